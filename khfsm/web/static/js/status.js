// Colours for repetition statuses: valid green, each fault code its own warm hue, violations
// (unallowed motion, the end of a test) red.
const FAULT_COLOURS = ["#d9822b", "#b8860b", "#a0522d", "#cc5c8a", "#8e6bbf", "#5c7f2e"];

export function statusColour(status) {
  if (!status || !status.length) return "#8a8f98";
  if (status.length === 1 && status[0] === 0) return "#2e9e4f";
  const code = status.find((c) => c > 0);
  if (code === undefined) return "#c62f2f";
  return FAULT_COLOURS[(code % 10) % FAULT_COLOURS.length];
}

export function statusLabel(status) {
  if (!status || !status.length) return "unknown";
  if (status.length === 1 && status[0] === 0) return "valid";
  return status.join("+");
}
