import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChallenge } from './challenge.js';

describe('parseChallenge', () => {
  it('parses Docker Hub and Distribution Bearer challenges', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'), {
      scheme: 'bearer',
      realm: 'https://auth.docker.io/token',
      service: 'registry.docker.io',
      scope: 'repository:library/nginx:pull',
    });
    assert.deepEqual(parseChallenge('bearer realm=https://r.example/t, service=svc'), { scheme: 'bearer', realm: 'https://r.example/t', service: 'svc' });
  });

  it('handles quoted commas and escapes, Basic, several challenges and garbage', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://a/t?x=1,2",scope="repository:a/b:pull,push",error="x\\"y"'), {
      scheme: 'bearer',
      realm: 'https://a/t?x=1,2',
      scope: 'repository:a/b:pull,push',
    });
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', realm: 'Registry Realm' });
    assert.equal(parseChallenge('Basic realm="x", Bearer realm="https://a/t"')?.scheme, 'bearer');
    assert.equal(parseChallenge(['Basic realm="x"', 'Bearer realm="https://a/t"'])?.scheme, 'bearer');
    assert.equal(parseChallenge('Bearer service="no realm"'), undefined);
    assert.equal(parseChallenge('Negotiate'), undefined);
    assert.equal(parseChallenge(undefined), undefined);
  });
});
