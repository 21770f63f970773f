#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: jobctl contributors
# SPDX-License-Identifier: MIT OR Apache-2.0 (as jobctl)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: job
short_description: Install, update or remove one jobctl job
description:
  - Writes the job file C(NAME.toml) into jobctl's jobs folder and applies that one job
    (C(jobctl apply NAME)) - its C(.service) and C(.timer) are written, systemd reloaded and the
    timer started, restarted or stopped as needed. Other jobs of the folder are not touched.
  - 'The desired content is checked as the job it will be, under its real name and against the
    host''s systemd version, before anything is written. An invalid definition fails the task
    with C(FILE:LINE:COL: key: message) and the hint in parentheses and changes nothing.'
  - Check mode is exact. The module plans with C(jobctl apply --check --job NAME=FILE) against the
    content given to the task (not the file on disk), writes nothing, and reports the units the
    real run then writes or deletes and the timer steps it takes.
  - Diff mode returns before/after diffs of the job file and of each C(.service) and C(.timer)
    that changes.
  - Needs only Python and the C(jobctl) binary on the managed host.
version_added: 0.1.0
author:
  - jobctl contributors
options:
  name:
    description:
      - The job's name. The job file is C(NAME.toml) in O(jobs_dir); the units are
        C(jobctl-NAME.service) and C(jobctl-NAME.timer).
      - Letters, digits, C(_), C(.) and C(-), not starting with C(.) or C(-), at most 100 characters.
    type: str
    required: true
  state:
    description:
      - V(present) writes the job file and applies the job; V(absent) deletes the file and removes
        the job's units (a job with nothing installed is no error).
    type: str
    choices: [present, absent]
    default: present
  definition:
    description:
      - The job as a dict of job-file keys (see C(man 5 jobctl.toml)), written as TOML in the
        order given. Nested dicts (V(environment), V(retry), V(metadata), the V(*_extra) tables)
        become TOML tables.
      - Mutually exclusive with O(content) and O(src).
    type: dict
  content:
    description:
      - The job file's text (TOML), for example from C(lookup('template', 'backup.toml.j2')).
      - Mutually exclusive with O(definition) and O(src).
    type: str
  src:
    description:
      - A job file on the controller (searched in the role's or play's C(files/) like
        M(ansible.builtin.copy)); it is read there and sent as O(content).
      - Mutually exclusive with O(definition) and O(content).
    type: path
  apply:
    description:
      - Apply the job after writing its file. With V(false) only the file is written; the result
        still says what C(jobctl apply) would do (RV(pending)).
    type: bool
    default: true
  run:
    description:
      - V(on_change) starts the job (C(jobctl run)) when the task created or changed it (its file's
        content or its units; not a mode or owner that was only corrected). Never in check mode.
    type: str
    choices: [never, on_change]
    default: never
  run_wait:
    description:
      - With O(run=on_change), wait for the run to end; a run that fails fails the task.
    type: bool
    default: true
  user:
    description:
      - Per-user mode (C(jobctl --user)) for the user the module runs as (use C(become_user)); the
        jobs folder defaults to C(~/.config/jobctl/jobs.d) and the units go to that user's own
        systemd manager. The user needs lingering (C(loginctl enable-linger)) for a manager to run.
    type: bool
    default: false
  jobs_dir:
    description:
      - The jobs folder.
      - Default C(/etc/jobctl/jobs.d), or C($XDG_CONFIG_HOME/jobctl/jobs.d) (C(~/.config/jobctl/jobs.d))
        with O(user=true).
    type: path
  config:
    description:
      - jobctl's global configuration file (C(jobctl --config)). Default jobctl's own
        (C(/etc/jobctl/config.toml), or C(~/.config/jobctl/config.toml) with O(user=true)).
    type: path
  jobctl_path:
    description:
      - The jobctl binary, a name looked up in C(PATH) or an absolute path.
    type: str
    default: jobctl
notes:
  - Job files are written atomically (a hidden temporary file in the jobs folder, which jobctl
    ignores, then a rename) with mode 0644, owned by root in system mode, as jobctl requires of
    the files it runs as root.
  - Exit statuses and JSON come from jobctl's config-management contract (docs/operations.md,
    "For config management").
seealso:
  - module: jobctl.core.jobs
  - module: jobctl.core.run
  - module: jobctl.core.info
attributes:
  check_mode:
    support: full
    details: The plan is jobctl's own, made from the content given to the task.
  diff_mode:
    support: full
    details: The job file and every unit that is written or deleted.
'''

EXAMPLES = r'''
- name: A nightly backup, from a definition
  jobctl.core.job:
    name: backup
    definition:
      description: Nightly backup of /srv
      command: [/usr/local/bin/backup, --full]
      daily: "02:15"
      timeout: 2h
      team: ops
      tags: [backup]
      environment:
        TARGET: s3://backups/srv

- name: A job from a template
  jobctl.core.job:
    name: report
    content: "{{ lookup('template', 'report.toml.j2') }}"
    run: on_change

- name: A per-user job of alice's
  jobctl.core.job:
    name: sync-notes
    user: true
    definition:
      command: [rsync, -a, notes/, backup/notes/]
      every: 15min
  become: true
  become_user: alice

- name: Remove a job and its units
  jobctl.core.job:
    name: old-report
    state: absent
'''

RETURN = r'''
name:
  description: The job.
  returned: always
  type: str
  sample: backup
state:
  description: The state asked for.
  returned: always
  type: str
  sample: present
jobs_dir:
  description: The jobs folder used.
  returned: always
  type: str
  sample: /etc/jobctl/jobs.d
systemd_version:
  description: The systemd version jobctl checked the job against.
  returned: always
  type: int
  sample: 252
attributes_fixed:
  description: What was wrong with the existing file's mode or owner (or that it was a link), now corrected.
  returned: when the file's mode or owner was wrong
  type: list
  elements: str
  sample: ["mode 0664 (wanted 0644)"]
change:
  description: What happened to the job's units (as jobctl's plan says).
  returned: always
  type: str
  sample: update
  choices: [create, update, remove, unchanged]
job_file:
  description: The job file.
  returned: always
  type: str
  sample: /etc/jobctl/jobs.d/backup.toml
file_changed:
  description: Whether the job file was (or in check mode would be) written or deleted.
  returned: always
  type: bool
units_written:
  description: Unit files written (or that would be).
  returned: always
  type: list
  elements: str
  sample: [jobctl-backup.timer]
units_deleted:
  description: Unit files deleted (or that would be).
  returned: always
  type: list
  elements: str
  sample: []
timer_steps:
  description: What is done to the job's timer.
  returned: always
  type: dict
  sample: {stop: false, disable: false, enable: false, start: false, restart: true}
reload:
  description: Whether systemd is (or would be) reloaded.
  returned: always
  type: bool
pending:
  description: With O(apply=false), whether C(jobctl apply) would change the job's units.
  returned: when O(apply=false)
  type: bool
diagnostics:
  description: jobctl's diagnostics for the job file (file, line, column, key, message, hint, severity).
  returned: always
  type: list
  elements: dict
notes:
  description: jobctl's notes about the job (for example a running job that is left running).
  returned: always
  type: list
  elements: str
msg:
  description: 'On an invalid job, each error as C(FILE:LINE:COL: key: message) and the hint in parentheses.'
  returned: failure
  type: str
  sample: "/etc/jobctl/jobs.d/backup.toml:3:1: comand: unknown key (did you mean `command`?)"
run:
  description: The run started by O(run=on_change), as M(jobctl.core.run) returns it.
  returned: when the job was run
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jobctl.core.plugins.module_utils.jobctl import (
    COMMON_ARGS, Jobctl, JobctlError, converge, run_result,
)


def main():
    argument_spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        definition=dict(type='dict'),
        content=dict(type='str'),
        src=dict(type='path'),
        apply=dict(type='bool', default=True),
        run=dict(type='str', default='never', choices=['never', 'on_change']),
        run_wait=dict(type='bool', default=True),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[['definition', 'content', 'src']],
        required_if=[['state', 'present', ['definition', 'content', 'src'], True]],
        supports_check_mode=True,
    )
    p = module.params
    if p['src'] is not None and p['content'] is None:
        module.fail_json(msg='src is read on the controller by the jobctl.core.job action; '
                             'use content (or call the module through its action)')
    jobctl = Jobctl(module)
    spec = dict(name=p['name'], state=p['state'], definition=p['definition'], content=p['content'])
    try:
        result, invalid = converge(module, jobctl, [spec], do_apply=p['apply'])
    except JobctlError as e:
        module.fail_json(msg=e.msg, **e.result)
    except (IOError, OSError) as e:
        module.fail_json(msg='%s: %s' % (jobctl.jobs_dir, e))

    job = result.pop('results')[0]
    for key in ('changed_jobs', 'invalid_jobs'):
        result.pop(key)
    job.pop('pruned')
    job.pop('changed')
    result.update(job)
    if invalid:
        result['changed'] = False
        result.pop('diff', None)
        module.fail_json(**result)
    if not module._diff:
        result.pop('diff')

    # A new or changed job runs; a file whose mode or owner was only
    # corrected does not.
    content_changed = result.pop('content_changed')
    run_now = content_changed or result['change'] in ('create', 'update')
    if p['run'] == 'on_change' and run_now and p['state'] == 'present' and not module.check_mode:
        try:
            rc, run = jobctl.run(p['name'], p['run_wait'])
        except JobctlError as e:
            module.fail_json(msg=e.msg, **result)
        result['run'] = run_result(run)
        if not run.get('started') or (p['run_wait'] and rc != 0):
            module.fail_json(msg='run %s: %s' % (p['name'], result['run']['msg']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
