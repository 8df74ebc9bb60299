import { BadRequestException } from '@nestjs/common';

/** Refuses passwords that contain the email's local part. Length is checked by the DTO. */
export function checkPasswordPolicy(email: string, password: string): void {
  const localPart = email.toLowerCase().split('@')[0] ?? '';
  if (localPart.length >= 3 && password.toLowerCase().includes(localPart)) {
    throw new BadRequestException(['password must not contain the email address']);
  }
}
