import { BadRequestException } from '@nestjs/common';

import common from './common-passwords.json';

const COMMON = new Set(common.passwords);
const TRAILING_DIGITS_AND_SYMBOLS = /[\d\W_]+$/;

/**
 * Password rules beyond the 12-128 length the DTO checks: not built on the email's local
 * part, not a common password, and not a common password with digits or symbols appended.
 */
export function checkPasswordPolicy(email: string, password: string): void {
  const lower = password.toLowerCase();
  const localPart = email.toLowerCase().split('@')[0] ?? '';
  if (localPart.length >= 3 && lower.includes(localPart)) {
    throw new BadRequestException(['password must not contain the email address']);
  }
  const base = lower.replace(TRAILING_DIGITS_AND_SYMBOLS, '');
  if (COMMON.has(lower) || COMMON.has(base) || /^(.)\1+$/.test(lower)) {
    throw new BadRequestException(['password is too common; choose a longer, unusual phrase']);
  }
}
