/** An environment variable a test process needs; a missing one stops it with the variable's name. */
export function requiredEnv(app: string, name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${app}: set ${name}`);
  return value;
}
