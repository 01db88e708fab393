// The skeleton over the evidence video, frame-exact: each video frame the browser presents
// (requestVideoFrameCallback, with the frame's own media time) is matched to the assessed
// frame shown at that moment: the last one whose presentation time (`pts`, else its time
// from the start) is at or before the frame's media time.

// MediaPipe's POSE_CONNECTIONS, as khfsm/vision/draw.py draws them.
const CONNECTIONS = [
  [0, 1], [1, 2], [2, 3], [3, 7], [0, 4], [4, 5], [5, 6], [6, 8], [9, 10],
  [11, 12], [11, 13], [13, 15], [15, 17], [15, 19], [15, 21], [17, 19],
  [12, 14], [14, 16], [16, 18], [16, 20], [16, 22], [18, 20],
  [11, 23], [12, 24], [23, 24], [23, 25], [24, 26], [25, 27], [26, 28],
  [27, 29], [28, 30], [29, 31], [30, 32], [27, 31], [28, 32],
];
const VISIBLE = 0.5;
// Half a millisecond: media times are doubles rounded from the container's time base.
const EPSILON = 0.0005;

export class Keypoints {
  constructor(data) {
    this.fps = data.fps;
    this.frames = data.frames;
    this.landmarks = data.landmarks;
    // When the recording stored each frame's presentation time, that is where it is in the
    // video; otherwise its time from the start.
    this.mediaTimes = data.frames.map((_, i) => {
      const pts = data.pts ? data.pts[i] : null;
      return pts === null || pts === undefined ? data.times[i] : pts;
    });
  }

  get length() {
    return this.frames.length;
  }

  // Index of the assessed frame on screen at `mediaTime`, or -1 before the first.
  indexAt(mediaTime) {
    let lo = 0;
    let hi = this.mediaTimes.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.mediaTimes[mid] <= mediaTime + EPSILON) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  // Index of the assessed frame numbered `frame` (or the first after it).
  indexOfFrame(frame) {
    let lo = 0;
    let hi = this.frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.frames[mid] < frame) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // Where to seek the video to show assessed frame `index`: a hair after its presentation
  // time, so that rounding never lands on the frame before it.
  seekTime(index) {
    return this.mediaTimes[index] + EPSILON;
  }
}

export class Overlay {
  constructor(video, canvas, keypoints, onFrame) {
    this.video = video;
    this.canvas = canvas;
    this.keypoints = keypoints;
    this.onFrame = onFrame;
    this.index = -1;
    this.mediaTime = 0;
    this.follow = this.follow.bind(this);
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
      video.requestVideoFrameCallback(this.follow);
    } else {
      // Without it (old browsers) the overlay follows timeupdate: in sync when paused only.
      video.addEventListener("timeupdate", () => this.show(video.currentTime));
    }
    video.addEventListener("seeked", () => this.show(video.currentTime));
    new ResizeObserver(() => this.show(this.mediaTime)).observe(video);
  }

  follow(now, metadata) {
    this.show(metadata.mediaTime);
    this.video.requestVideoFrameCallback(this.follow);
  }

  show(mediaTime) {
    this.mediaTime = mediaTime;
    this.index = this.keypoints.indexAt(mediaTime);
    this.draw();
    const frame = this.index >= 0 ? this.keypoints.frames[this.index] : null;
    this.canvas.dataset.frame = frame === null ? "" : String(frame);
    this.canvas.dataset.mediaTime = mediaTime.toFixed(4);
    // For the browser tests and anyone curious in the console: what is drawn right now.
    window.khfsmOverlay = {
      index: this.index,
      frame,
      mediaTime,
      landmarks: this.index >= 0 ? this.keypoints.landmarks[this.index] : null,
    };
    this.onFrame(this.index, mediaTime);
  }

  // The video's picture inside its element (object-fit: contain letterboxes it).
  pictureBox() {
    const v = this.video;
    const width = v.clientWidth;
    const height = v.clientHeight;
    if (!v.videoWidth || !v.videoHeight) return { x: 0, y: 0, w: width, h: height, width, height };
    const scale = Math.min(width / v.videoWidth, height / v.videoHeight);
    const w = v.videoWidth * scale;
    const h = v.videoHeight * scale;
    return { x: (width - w) / 2, y: (height - h) / 2, w, h, width, height };
  }

  draw() {
    const box = this.pictureBox();
    const ratio = window.devicePixelRatio || 1;
    const canvas = this.canvas;
    if (canvas.width !== Math.round(box.width * ratio) || canvas.height !== Math.round(box.height * ratio)) {
      canvas.width = Math.round(box.width * ratio);
      canvas.height = Math.round(box.height * ratio);
      canvas.style.width = `${box.width}px`;
      canvas.style.height = `${box.height}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, box.width, box.height);
    if (this.index < 0) return;
    const points = this.keypoints.landmarks[this.index];
    if (!points || !points.length) return; // nobody in view on this frame
    const at = (p) => [box.x + p[0] * box.w, box.y + p[1] * box.h];
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(255,255,255,0.9)";
    ctx.beginPath();
    for (const [a, b] of CONNECTIONS) {
      const [ax, ay] = at(points[a]);
      const [bx, by] = at(points[b]);
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
    }
    ctx.stroke();
    for (const p of points) {
      const [x, y] = at(p);
      ctx.fillStyle = p[2] >= VISIBLE ? "#25d04a" : "#e03c3c";
      ctx.beginPath();
      ctx.arc(x, y, 4, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}
