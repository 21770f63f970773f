#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: jobctl contributors
# SPDX-License-Identifier: MIT OR Apache-2.0 (as jobctl)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: run
short_description: Run a jobctl job now and return its exit status
description:
  - Starts an installed job outside its schedule (C(jobctl run NAME --wait --json)), waits for the
    run to end and returns what it did - the job's own exit status, its result, jobctl's run id
    and systemd's invocation id.
  - A run that fails fails the task (its results are still returned) unless
    O(fail_on_failure=false).
  - A start systemd refuses or merges into a run already in progress (C(started=false), with the
    reason) fails the task too.
  - Skipped in check mode (running a job is not something to predict).
version_added: 0.1.0
author:
  - jobctl contributors
options:
  name:
    description: The job.
    type: str
    required: true
  wait:
    description:
      - Wait for the run to end. With V(false) the task returns once the run has begun
        (RV(exit_status) and RV(result) are then null).
    type: bool
    default: true
  fail_on_failure:
    description: Fail the task when the run does not succeed (a non-zero exit status, a signal).
    type: bool
    default: true
  user:
    description: Per-user mode (C(jobctl --user)) for the user the module runs as.
    type: bool
    default: false
  jobs_dir:
    description: The jobs folder (for jobctl's hints and per-job settings).
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
    support: none
  diff_mode:
    support: none
seealso:
  - module: jobctl.core.job
'''

EXAMPLES = r'''
- name: Refresh the warehouse now
  jobctl.core.run:
    name: nightly-refresh

- name: Run a check that may fail, and look at how it ended
  jobctl.core.run:
    name: disk-check
    fail_on_failure: false
  register: check

- name: Say so
  ansible.builtin.debug:
    msg: "disk-check exited {{ check.exit_status }} ({{ check.result }})"
'''

RETURN = r'''
exit_status:
  description: The job's exit status (128+N when killed by signal N); null without O(wait).
  returned: always
  type: int
  sample: 3
result:
  description: jobctl's word for how the run ended (C(success), C(failed), C(timeout), C(killed) ...).
  returned: always
  type: str
  sample: failed
systemd_result:
  description: systemd's C(Result) of the service.
  returned: always
  type: str
  sample: exit-code
signal:
  description: The signal that killed the job, if one did.
  returned: always
  type: int
run_id:
  description: jobctl's run id (C(jobctl history), C(jobctl logs)).
  returned: always
  type: str
  sample: 1074676d4c2597cc
invocation_id:
  description: systemd's invocation id (C(journalctl _SYSTEMD_INVOCATION_ID=...)).
  returned: always
  type: str
started:
  description: Whether a run of its own began.
  returned: always
  type: bool
already_running:
  description: Whether the start was merged into a run already in progress.
  returned: always
  type: bool
msg:
  description: How the run ended, in words (or why it did not start).
  returned: always
  type: str
  sample: failed (exit status 3)
job:
  description: The job.
  returned: always
  type: str
reason:
  description: Why no run began, when none did.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jobctl.core.plugins.module_utils.jobctl import (
    COMMON_ARGS, Jobctl, JobctlError, check_name, run_result,
)


def main():
    argument_spec = dict(
        name=dict(type='str', required=True),
        wait=dict(type='bool', default=True),
        fail_on_failure=dict(type='bool', default=True),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=False)
    p = module.params
    jobctl = Jobctl(module)
    try:
        check_name(p['name'], 'name')
        rc, run = jobctl.run(p['name'], p['wait'])
    except JobctlError as e:
        module.fail_json(msg=e.msg, **e.result)
    result = run_result(run)
    result['changed'] = result['started']
    if not result['started']:
        module.fail_json(**result)
    if p['wait'] and p['fail_on_failure'] and rc != 0:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
