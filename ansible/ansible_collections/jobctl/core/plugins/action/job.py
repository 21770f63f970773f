# -*- coding: utf-8 -*-
# Copyright: jobctl contributors
# SPDX-License-Identifier: MIT OR Apache-2.0 (as jobctl)
"""The controller side of jobctl.core.job and jobctl.core.jobs: a job's
``src`` is a file on the controller (found like ``copy``'s, in ``files/``),
read here and sent to the module as ``content``. Everything else is the
module's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase


def read_src(action, spec, where):
    """Replace ``src`` in ``spec`` by the file's text as ``content``."""
    src = spec.get('src')
    if src is None:
        return spec
    if spec.get('content') is not None or spec.get('definition') is not None:
        raise AnsibleActionFail('%s: src, content and definition are mutually exclusive' % where)
    try:
        path = action._find_needle('files', src)
        real = action._loader.get_real_file(path, decrypt=True)
        with open(real, 'rb') as f:
            data = f.read()
    except (AnsibleError, IOError, OSError) as e:
        raise AnsibleActionFail('%s: cannot read src %s: %s' % (where, src, to_text(e)))
    try:
        content = data.decode('utf-8')
    except UnicodeDecodeError as e:
        # jobctl reads job files as UTF-8 only; surrogates would fail later,
        # in Ansible's own serialisation, with a message naming nothing.
        raise AnsibleActionFail(
            '%s: src %s (%s): the file is not UTF-8 text (line %d, byte 0x%02x); save it as UTF-8'
            % (where, src, path, data.count(b'\n', 0, e.start) + 1, data[e.start]))
    spec = dict(spec)
    del spec['src']
    spec['content'] = content
    return spec


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        try:
            if self._task.action.endswith('jobs'):
                args['jobs'] = [
                    read_src(self, dict(job), 'jobs[%d] (%s)' % (i, job.get('name')))
                    if isinstance(job, dict) else job
                    for i, job in enumerate(args.get('jobs') or [])
                ]
            else:
                args = read_src(self, args, 'job')
        except AnsibleActionFail as e:
            result['failed'] = True
            result['msg'] = to_text(e)
            return result
        result.update(self._execute_module(module_args=args, task_vars=task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
