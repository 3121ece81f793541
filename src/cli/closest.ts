/**
 * "Did you mean": the known word nearest to a mistyped one. Pure.
 */

/** Words closer than this (edit distance) to a keyword get a "did you mean"; a third of the word's length, at least 1, at most 2. */
function suggestionDistance(word: string): number {
  return Math.min(2, Math.max(1, Math.floor(word.length / 3)));
}

/**
 * The candidate nearest to `word` (case-insensitive optimal string alignment
 * distance: insertions, deletions, substitutions and swaps of neighbours each
 * cost 1), when it is close enough to be a typo; the first on a tie.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const limit = suggestionDistance(word);
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

/** Optimal string alignment distance between two strings (UTF-16 units). */
export function editDistance(a: string, b: string): number {
  // Rows i-2, i-1 and i of the usual dynamic-programming table.
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, before[j - 2]! + 1);
      current.push(distance);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}
