/**
 * Resolves true once `promise` resolves, false if `ms` pass first; rejects as soon as `promise` rejects.
 * The timer goes in every case: one left behind would hold the process open for up to `ms` after a
 * shutdown whose store call failed.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
