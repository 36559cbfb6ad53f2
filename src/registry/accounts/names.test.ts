import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAccountError } from './account-error.js';
import { isLookupName, parseRobotName, robotFullName, validateEmail, validateNamespaceName, validateRobotShortName, validateTeamName } from './names.js';

const refuses = (fn: () => unknown) => assert.throws(fn, (err) => isAccountError(err) && err.type === 'invalid_request' && err.status === 400);

describe('account names', () => {
  it('accepts user and organization names in the repository component grammar, 2..255 long', () => {
    for (const ok of ['ab', 'acme', 'a1', '9lives', 'my.org', 'my_org', 'my__org', 'my-org', 'my---org', 'a.b_c__d-e', 'x'.repeat(255)]) {
      assert.equal(validateNamespaceName(ok), ok);
    }
    for (const bad of ['', 'a', 'x'.repeat(256), 'Acme', 'acme!', '-acme', 'acme-', '.acme', 'my...org', 'my___org', 'my_-org', 'a/b', 'a+b', 'a b', 'ä']) {
      refuses(() => validateNamespaceName(bad));
    }
  });

  it('looks up legacy one-character namespaces but nothing malformed', () => {
    assert.equal(isLookupName('a'), true);
    assert.equal(isLookupName('acme'), true);
    for (const bad of ['', 'A', 'a/b', 'x'.repeat(256), 42, undefined]) assert.equal(isLookupName(bad), false);
  });

  it('validates robot short names and splits full robot names', () => {
    for (const ok of ['ci', 'c1', 'deploy_bot', 'a' + 'b'.repeat(254)]) assert.equal(validateRobotShortName(ok), ok);
    for (const bad of ['c', '1ci', '_ci', 'CI', 'ci-bot', 'ci.bot', 'a' + 'b'.repeat(255)]) refuses(() => validateRobotShortName(bad));
    assert.deepEqual(parseRobotName('acme+ci_bot'), { namespace: 'acme', short: 'ci_bot' });
    assert.deepEqual(parseRobotName('a+ci'), { namespace: 'a', short: 'ci' });
    for (const bad of ['acme', 'acme+', '+ci', 'Acme+ci', 'acme+ci+x', 'acme+Ci', 'acme/x+ci']) assert.equal(parseRobotName(bad), undefined, bad);
    assert.equal(robotFullName('acme', 'ci'), 'acme+ci');
  });

  it('validates team names', () => {
    for (const ok of ['owners', 'devs', 'team2']) assert.equal(validateTeamName(ok), ok);
    for (const bad of ['o', '2team', 'dev-team', 'dev_team', 'Devs', '', 'a' + 'b'.repeat(255)]) refuses(() => validateTeamName(bad));
  });

  it('checks email addresses loosely', () => {
    assert.equal(validateEmail('ops@example.com'), 'ops@example.com');
    assert.equal(validateEmail(undefined), null);
    assert.equal(validateEmail(null), null);
    for (const bad of ['ops', 'ops@', '@example.com', 'o ps@example.com', `${'x'.repeat(250)}@e.co`]) refuses(() => validateEmail(bad));
  });
});
