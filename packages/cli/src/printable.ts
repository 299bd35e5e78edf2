// What the CLI prints comes partly from strangers: tensor names, file names and
// metadata read back from a store. A control character in one (an escape sequence,
// a carriage return, a bidirectional override) could rewrite the user's terminal, so
// every such character is printed escaped, as `\x1b` or `\u202e`; line breaks of the
// CLI's own layout stay.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

function escaped(char: string): string {
  const code = char.codePointAt(0) as number;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Text output with every control character but the line break escaped. */
export function printable(text: string): string {
  return text.replace(CONTROL, escaped);
}

/** JSON output: `JSON.stringify` escapes C0 characters but not C1 ones (`\u009b` starts a sequence too). */
export function printableJson(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
  );
}
