import { BadRequestException } from '@nestjs/common';

import { checkPasswordPolicy } from './password-policy';

describe(checkPasswordPolicy.name, () => {
  describe('when the password contains the local part of the email', () => {
    it.each([
      ['ada.lovelace@example.com', 'my ada.lovelace password'],
      ['ada.lovelace@example.com', 'MY ADA.LOVELACE PASSWORD'],
      ['bob@example.com', 'correct horse bob staple'],
    ])('refuses %s with %p', (email, password) => {
      expect(() => checkPasswordPolicy(email, password)).toThrow(BadRequestException);
    });

    it('says why, as a validation message list', () => {
      let thrown: unknown;
      try {
        checkPasswordPolicy('ada.lovelace@example.com', 'ada.lovelace-2024');
      } catch (error) {
        thrown = error;
      }

      expect(thrown).toBeInstanceOf(BadRequestException);
      expect((thrown as BadRequestException).getResponse()).toMatchObject({
        statusCode: 400,
        message: ['password must not contain the email address'],
      });
    });
  });

  describe('when the password does not contain it', () => {
    it.each([
      ['ada.lovelace@example.com', 'correct horse battery staple'],
      ['ada.lovelace@example.com', 'ada lovelace differently spaced'],
      ['al@example.com', 'al is only two letters long'],
      ['no-at-sign', 'correct horse battery staple'],
    ])('accepts %s with %p', (email, password) => {
      expect(() => checkPasswordPolicy(email, password)).not.toThrow();
    });
  });
});

describe('common passwords', () => {
  it.each(['password1234', 'Qwertyuiop!!', '1qaz2wsx3edc', 'iloveyou2024!', 'aaaaaaaaaaaa'])(
    'refuses %p',
    (password) => {
      let thrown: unknown;
      try {
        checkPasswordPolicy('ada@example.com', password);
      } catch (error) {
        thrown = error;
      }
      expect((thrown as BadRequestException).getResponse()).toMatchObject({
        message: ['password is too common; choose a longer, unusual phrase'],
      });
    },
  );

  it('accepts an unusual phrase', () => {
    expect(() => checkPasswordPolicy('ada@example.com', 'violet tapir 9 ledger')).not.toThrow();
  });
});
