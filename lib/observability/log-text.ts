// C0 and C1 controls, the Unicode line separators and the bidi overrides: raw, they forge log lines,
// recolour or clear a terminal, overwrite lines or reorder text.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` with its control characters written as escapes (`\n`, `\u001b`), which are also JSON's, so
 * that JSON output stays valid. `keepNewlines` is for whole blocks of the CLI's own output; data
 * (names, ids, error messages) keeps none, so that it cannot forge a line.
 */
export function escapeControlCharacters(text: string, keepNewlines = false): string {
  return text.replace(
    keepNewlines ? CONTROLS_BUT_NEWLINE : CONTROL_CHARACTERS,
    (char) => NAMED_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * A stack (or any text that may be one) for a log: one line per frame, everything else escaped. Its
 * first line holds the error's message, which may carry request text with line breaks of its own.
 */
export function escapeStack(stack: string): string {
  return stack
    .split(/\n(?=\s*at )/)
    .map((line) => escapeControlCharacters(line))
    .join('\n');
}
