import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh private directory under the system temp dir, for one spec file's files. */
export function createTempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `portcullis-${label}-`));
}

/** Removes a directory made by {@link createTempDir}, whatever it holds. */
export function removeTempDir(directory: string): void {
  rmSync(directory, { recursive: true, force: true });
}
