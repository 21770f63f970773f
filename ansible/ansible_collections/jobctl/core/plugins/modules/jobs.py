#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: jobctl contributors
# SPDX-License-Identifier: MIT OR Apache-2.0 (as jobctl)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: jobs
short_description: Install, update or remove a set of jobctl jobs in one go
description:
  - The same as M(jobctl.core.job) for a list of jobs, planned together in one
    C(jobctl apply --check) and applied together in one C(jobctl apply) (one systemd reload).
  - 'One invalid job fails that job, not the others (O(on_invalid=fail_job)) - the valid jobs are
    written and applied, the invalid job''s file and installed units are left exactly as they
    are, and the task fails naming it with C(FILE:LINE:COL: key: message) and the hint in parentheses.
    O(on_invalid=fail_all) writes nothing while any listed job is invalid.'
  - With O(exclusive=true) the list is the whole jobs folder - job files not listed are deleted
    and their units removed. Only files of O(jobs_dir) are deleted (jobctl's job files there,
    C(*.toml) not starting with C(.)); jobs installed from other jobs folders are left alone.
  - Check mode is exact and writes nothing; diff mode returns the job files' and units' diffs.
version_added: 0.1.0
author:
  - jobctl contributors
options:
  jobs:
    description:
      - The jobs. Each takes the options of M(jobctl.core.job) that describe one job.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The job's name (the file is C(NAME.toml)).
        type: str
        required: true
      state:
        description: V(present) or V(absent).
        type: str
        choices: [present, absent]
        default: present
      definition:
        description: The job as a dict of job-file keys, written as TOML.
        type: dict
      content:
        description: The job file's text.
        type: str
      src:
        description: A job file on the controller, read there and sent as O(jobs[].content).
        type: path
  exclusive:
    description:
      - Delete the job files of O(jobs_dir) that are not listed, and remove their units (and the
        units of jobs whose files are already gone from this folder).
    type: bool
    default: false
  on_invalid:
    description:
      - V(fail_job) applies the valid jobs and fails the task naming the invalid ones.
      - V(fail_all) changes nothing while any listed job is invalid.
    type: str
    choices: [fail_job, fail_all]
    default: fail_job
  apply:
    description: Apply the jobs after writing their files.
    type: bool
    default: true
  user:
    description: Per-user mode (C(jobctl --user)) for the user the module runs as.
    type: bool
    default: false
  jobs_dir:
    description:
      - The jobs folder. Default C(/etc/jobctl/jobs.d), or C(~/.config/jobctl/jobs.d) with O(user=true).
    type: path
  config:
    description: jobctl's global configuration file (C(jobctl --config)).
    type: path
  jobctl_path:
    description: The jobctl binary, a name looked up in C(PATH) or an absolute path.
    type: str
    default: jobctl
notes:
  - Job files are written atomically with mode 0644, owned by root in system mode.
seealso:
  - module: jobctl.core.job
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
'''

EXAMPLES = r'''
- name: Every job of this host, and no other
  jobctl.core.jobs:
    exclusive: true
    jobs:
      - name: backup
        definition:
          command: [/usr/local/bin/backup]
          daily: "02:15"
      - name: report
        content: "{{ lookup('template', 'report.toml.j2') }}"
      - name: old-cleanup
        state: absent
'''

RETURN = r'''
results:
  description: One entry per job (the listed ones, then those O(exclusive=true) removes), with the
    keys M(jobctl.core.job) returns (name, job_file, state, change, changed, file_changed, units_written,
    units_deleted, timer_steps, diagnostics, notes, content_changed, pruned, and msg for an invalid job).
  returned: always
  type: list
  elements: dict
changed_jobs:
  description: The jobs that changed (or in check mode would).
  returned: always
  type: list
  elements: str
invalid_jobs:
  description: The jobs whose definitions are invalid (not written, their units left alone).
  returned: always
  type: list
  elements: str
reload:
  description: Whether systemd is (or would be) reloaded.
  returned: always
  type: bool
msg:
  description: 'The invalid jobs'' errors, each as C(FILE:LINE:COL: key: message) and the hint in parentheses.'
  returned: failure
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jobctl.core.plugins.module_utils.jobctl import (
    COMMON_ARGS, Jobctl, JobctlError, converge,
)


def main():
    argument_spec = dict(
        jobs=dict(type='list', elements='dict', required=True, options=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            definition=dict(type='dict'),
            content=dict(type='str'),
            src=dict(type='path'),
        ), mutually_exclusive=[['definition', 'content', 'src']],
            required_if=[['state', 'present', ['definition', 'content', 'src'], True]]),
        exclusive=dict(type='bool', default=False),
        on_invalid=dict(type='str', default='fail_job', choices=['fail_job', 'fail_all']),
        apply=dict(type='bool', default=True),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    for job in p['jobs']:
        if job.get('src') is not None and job.get('content') is None:
            module.fail_json(msg='jobs: %s: src is read on the controller by the jobctl.core.jobs action; '
                                 'use content' % job.get('name'))
    jobctl = Jobctl(module)
    try:
        result, invalid = converge(module, jobctl, p['jobs'], exclusive=p['exclusive'],
                                   on_invalid=p['on_invalid'], do_apply=p['apply'])
    except JobctlError as e:
        module.fail_json(msg=e.msg, **e.result)
    except (IOError, OSError) as e:
        module.fail_json(msg='%s: %s' % (jobctl.jobs_dir, e))
    if not module._diff:
        result.pop('diff')
    if invalid:
        names = sorted(invalid)
        one = len(names) == 1
        if p['on_invalid'] == 'fail_all':
            what = 'nothing was changed'
        elif module.check_mode:
            # Check mode changes nothing: say what a real run would do.
            what = '%s be left as %s; the other jobs would go ahead' % (
                'its file and units would' if one else 'their files and units would', 'they are')
        else:
            what = '%s left as %s; the other jobs went ahead' % (
                'its file and units are' if one else 'their files and units are', 'they are')
        msg = 'invalid job%s %s (%s): %s' % (
            '' if one else 's', ', '.join(names), what, '; '.join(invalid[name] for name in names))
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
