// Plain-text tables whose columns are as wide as their widest cell, so that a long
// name (a published best carries a content hash) never pushes its row out of line.

export type Align = 'left' | 'right';

/** Rows of cells, columns separated by two spaces, trailing spaces trimmed. */
export function formatTable(rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (align[i] === 'right' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
