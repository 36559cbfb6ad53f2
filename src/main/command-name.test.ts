import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { commandName } from './command-name.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');

describe('commandName', () => {
  it('`wharf` when run through a wharf command on the PATH, its path when not on the PATH', () => {
    assert.equal(commandName('/usr/local/bin/wharf', { PATH: '/usr/bin:/usr/local/bin' }, '/'), 'wharf');
    assert.equal(commandName('/opt/wharf/node_modules/.bin/wharf', { PATH: '/usr/bin' }, '/'), '/opt/wharf/node_modules/.bin/wharf');
  });

  it('`node bin/wharf.js` from the checkout, with an absolute path elsewhere', () => {
    for (const script of [resolve(repoRoot, 'bin/wharf.js'), resolve(repoRoot, 'src/main/cli.ts')]) {
      assert.equal(commandName(script, { PATH: '/usr/bin' }, repoRoot), 'node bin/wharf.js');
      assert.equal(commandName(script, { PATH: '/usr/bin' }, '/'), `node ${resolve(repoRoot, 'bin/wharf.js')}`);
    }
  });
});
