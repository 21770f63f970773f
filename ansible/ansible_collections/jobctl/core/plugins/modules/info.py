#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: jobctl contributors
# SPDX-License-Identifier: MIT OR Apache-2.0 (as jobctl)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: info
short_description: Gather jobctl's jobs, their status and health as facts
description:
  - Returns C(jobctl list --json), C(jobctl status --json) and C(jobctl health --json) of the host
    as the fact C(jobctl) (and as return values), for reports across many hosts.
  - An unhealthy host is not a failure - C(health.healthy) says so.
  - Changes nothing; runs in check mode too.
version_added: 0.1.0
author:
  - jobctl contributors
options:
  gather:
    description: What to gather.
    type: list
    elements: str
    choices: [list, status, health]
    default: [list, status, health]
  owner:
    description: Only jobs whose C(owner) is this.
    type: str
  team:
    description: Only jobs whose C(team) is this.
    type: str
  tags:
    description: Only jobs with every one of these tags.
    type: list
    elements: str
  user:
    description: Per-user mode (C(jobctl --user)) for the user the module runs as.
    type: bool
    default: false
  jobs_dir:
    description: The jobs folder.
    type: path
  config:
    description: jobctl's global configuration file (C(jobctl --config)).
    type: path
  jobctl_path:
    description: The jobctl binary, a name looked up in C(PATH) or an absolute path.
    type: str
    default: jobctl
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
'''

EXAMPLES = r'''
- name: Gather jobctl's facts
  jobctl.core.info:

- name: Failed jobs of this host
  ansible.builtin.debug:
    msg: "{{ ansible_facts.jobctl.health.jobs | rejectattr('healthy') | map(attribute='job') | list }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts under the key C(jobctl).
  returned: always
  type: complex
  contains:
    jobctl:
      description: C(version), and C(list), C(status), C(health) as gathered.
      type: dict
list:
  description:
    - C(jobctl list --json) as jobctl prints it (docs/json.md, schema C(jobctl.list/v1)) - C(schema), C(host),
      and C(jobs), one row per job (state, schedule, next and last run, owner, team, tags).
  returned: when gathered
  type: dict
status:
  description:
    - C(jobctl status --json) (schema C(jobctl.status/v1)) - C(schema), C(host), and C(jobs), the rows of
      RV(list) with the unit's state and each job's problems.
  returned: when gathered
  type: dict
health:
  description: C(jobctl health --json) - C(healthy), C(summary), C(counts), C(problems), and per job its problems.
  returned: when gathered
  type: dict
version:
  description: C(jobctl --version).
  returned: always
  type: str
  sample: jobctl 0.1.0
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.jobctl.core.plugins.module_utils.jobctl import (
    COMMON_ARGS, Jobctl, JobctlError,
)


def main():
    argument_spec = dict(
        gather=dict(type='list', elements='str', default=['list', 'status', 'health'],
                    choices=['list', 'status', 'health']),
        owner=dict(type='str'),
        team=dict(type='str'),
        tags=dict(type='list', elements='str'),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    jobctl = Jobctl(module)
    filters = []
    for key in ('owner', 'team'):
        if p[key]:
            filters += ['--' + key, p[key]]
    for tag in p['tags'] or []:
        filters += ['--tag', tag]

    facts = {}
    rc, _parsed, out, err = jobctl.call(['--version'])
    facts['version'] = to_text(out).strip() if rc == 0 else None
    try:
        for what in ('list', 'status', 'health'):
            if what not in p['gather']:
                continue
            # health exits 1 when a job has a problem: that is its answer.
            ok = (0, 1) if what == 'health' else (0,)
            _rc, facts[what] = jobctl.json_call([what, '--json'] + filters, ok, 'jobctl %s' % what)
    except JobctlError as e:
        module.fail_json(msg=e.msg, **e.result)
    result = dict(changed=False, ansible_facts=dict(jobctl=facts))
    result.update(facts)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
