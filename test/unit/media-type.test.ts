import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mediaType } from '../../src/common/media-type.js';

test('mediaType: parameters dropped, case folded, blanks trimmed', () => {
  assert.equal(mediaType('Audio/MPEG; charset=x'), 'audio/mpeg');
  assert.equal(mediaType(' application/ogg '), 'application/ogg');
  assert.equal(mediaType(''), '');
  assert.equal(mediaType(undefined), '');
});
