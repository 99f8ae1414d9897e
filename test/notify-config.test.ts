// fleet.yaml `notify:`: validated at the edge, with messages that name the path and say what to do; credentials are
// secret references under the fleet's own path, never values.
import { describe, expect, it } from 'vitest';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { formatIssue } from '../daemon/manifest/parse.ts';
import { DEFAULT_FLEET_YAML } from './harness/git.ts';

const check = (notify: string, extra = '') => {
  const r = checkFleetConfig(`${DEFAULT_FLEET_YAML}${extra}notify:\n${notify}`);
  return { config: r.config, issues: r.issues.map(formatIssue) };
};

describe('fleet.yaml notify', () => {
  it('takes webhooks and a GitHub status, with defaults', () => {
    const { config, issues } = check(`  webhooks:
    - name: ops
      urlSecret: /atomo/fleet/OPS_WEBHOOK_URL
    - name: chat
      format: slack
      urlSecret: /atomo/fleet/SLACK_WEBHOOK_URL
      events: [deploy_applied, project_failed]
  githubStatus:
    repository: acme/fleet
    tokenSecret: /atomo/fleet/GITHUB_TOKEN
`);
    expect(issues).toEqual([]);
    expect(config!.notify).toEqual({
      webhooks: [
        { name: 'ops', format: 'json', urlSecret: '/atomo/fleet/OPS_WEBHOOK_URL' },
        { name: 'chat', format: 'slack', urlSecret: '/atomo/fleet/SLACK_WEBHOOK_URL', events: ['deploy_applied', 'project_failed'] },
      ],
      githubStatus: { repository: 'acme/fleet', tokenSecret: '/atomo/fleet/GITHUB_TOKEN', apiUrl: 'https://api.github.com', context: 'atomo-fleet/deploy' },
    });
  });

  it.each([
    ['a webhook URL instead of a reference', '  webhooks:\n    - name: ops\n      urlSecret: https://hooks.slack.com/services/T0/B0/abc\n', /\/notify\/webhooks\/0\/urlSecret: must be a secret reference .*not a value/],
    ['a relative reference', '  webhooks:\n    - name: ops\n      urlSecret: OPS_URL\n', /\/notify\/webhooks\/0\/urlSecret: must be an absolute secret reference such as \/atomo\/fleet\/SLACK_WEBHOOK_URL/],
    ['a project\'s path', '  webhooks:\n    - name: ops\n      urlSecret: /atomo/blog/URL\n', /\/notify\/webhooks\/0\/urlSecret: is under another path than the fleet's own; store it under \/atomo\/fleet\//],
    ['a token under a project\'s path', '  githubStatus:\n    repository: acme/fleet\n    tokenSecret: /atomo/shop/GH\n', /\/notify\/githubStatus\/tokenSecret: is under another path/],
    ['two webhooks with one name', '  webhooks:\n    - name: ops\n      urlSecret: /atomo/fleet/A\n    - name: ops\n      urlSecret: /atomo/fleet/B\n', /\/notify\/webhooks\/1\/name: "ops" names two webhooks/],
    ['an unknown event', '  webhooks:\n    - name: ops\n      urlSecret: /atomo/fleet/A\n      events: [deploy_done]\n', /\/notify\/webhooks\/0\/events\/0: must be one of/],
    ['an unknown key', '  webhooks:\n    - name: ops\n      url: https://example.com/hook\n      urlSecret: /atomo/fleet/A\n', /\/notify\/webhooks\/0.*url/],
    ['an unknown format', '  webhooks:\n    - name: ops\n      format: teams\n      urlSecret: /atomo/fleet/A\n', /\/notify\/webhooks\/0\/format: must be one of/],
    ['a missing token', '  githubStatus:\n    repository: acme/fleet\n', /\/notify\/githubStatus: missing required key "tokenSecret"/],
    ['a repository that is not owner/name', '  githubStatus:\n    repository: https://github.com/acme/fleet\n    tokenSecret: /atomo/fleet/GH\n', /\/notify\/githubStatus\/repository: must be owner\/name/],
    ['an API URL with credentials', '  githubStatus:\n    repository: acme/fleet\n    tokenSecret: /atomo/fleet/GH\n    apiUrl: https://user:pw@ghe.example.com/api/v3\n', /\/notify\/githubStatus\/apiUrl: must be an http\(s\) URL without credentials/],
  ])('refuses %s', (_name, notify, message) => {
    const { config, issues } = check(notify);
    expect(config).toBeNull();
    expect(issues.join('\n')).toMatch(message);
  });

  it('sharedSecrets cannot share a webhook URL', () => {
    const { issues } = check('  webhooks:\n    - name: ops\n      urlSecret: /ops/hooks/OPS\n', 'sharedSecrets: [/ops/hooks/]\n');
    expect(issues.join('\n')).toMatch(/\/sharedSecrets\/0: would share the fleet's own secrets/);
  });
});
