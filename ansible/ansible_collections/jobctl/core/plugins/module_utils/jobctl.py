# -*- coding: utf-8 -*-
# Copyright: jobctl contributors
# SPDX-License-Identifier: MIT OR Apache-2.0 (as jobctl)
"""What the jobctl.core modules share: calling the ``jobctl`` binary on the
managed host (its ``--json`` contract, docs/operations.md "For config
management"), writing job files the way jobctl's ownership rule wants them,
turning a ``definition`` into TOML, and the results and diffs the modules
return.

Nothing here plans anything itself: every prediction is jobctl's own
``apply --check --json`` on the content the task gives, so check mode says
exactly what the real run then does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math
import os
import pwd
import re
import shutil
import stat
import tempfile

from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.module_utils.six import binary_type, integer_types, string_types

# The options every module takes: which jobctl, which mode, which folders.
COMMON_ARGS = dict(
    user=dict(type='bool', default=False),
    jobs_dir=dict(type='path'),
    config=dict(type='path'),
    jobctl_path=dict(type='str', default='jobctl'),
)

HEADER = u'# Managed by Ansible (jobctl.core). Local changes are overwritten.\n'

# jobctl's job-name rule (docs/job-file.md): letters, digits, `_`, `.`, `-`,
# not starting with `.` or `-`, at most 100 characters.
NAME_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$')

# Exit statuses of `jobctl apply` (docs/operations.md).
APPLY_OK = 0
APPLY_PARTIAL = 1
APPLY_INVALID_INPUT = 2
APPLY_WOULD_CHANGE = 3
APPLY_INVALID_SKIPPED = 6


class JobctlError(Exception):
    """jobctl refused or failed: ``msg`` for the task, the rest as results."""

    def __init__(self, msg, **result):
        super(JobctlError, self).__init__(msg)
        self.msg = msg
        self.result = result


# ---------------------------------------------------------------------------
# TOML for `definition`


_BARE_KEY = re.compile(r'^[A-Za-z0-9_-]+$')


def _toml_key(key):
    key = to_text(key)
    if _BARE_KEY.match(key):
        return key
    return _toml_string(key)


def _toml_string(value):
    out = [u'"']
    for ch in to_text(value):
        code = ord(ch)
        if ch == u'"':
            out.append(u'\\"')
        elif ch == u'\\':
            out.append(u'\\\\')
        elif ch == u'\n':
            out.append(u'\\n')
        elif ch == u'\t':
            out.append(u'\\t')
        elif ch == u'\r':
            out.append(u'\\r')
        elif code < 0x20 or code == 0x7f:
            out.append(u'\\u%04x' % code)
        else:
            out.append(ch)
    out.append(u'"')
    return u''.join(out)


def _toml_value(value, where):
    if isinstance(value, bool):
        return u'true' if value else u'false'
    if isinstance(value, integer_types):
        return to_text(str(value))
    if isinstance(value, float):
        if math.isnan(value):
            return u'nan'
        if math.isinf(value):
            return u'inf' if value > 0 else u'-inf'
        return to_text(repr(value))
    if isinstance(value, (datetime.datetime, datetime.date)):
        return to_text(value.isoformat())
    if isinstance(value, (string_types, binary_type)):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return u'[' + u', '.join(_toml_value(v, where) for v in value) + u']'
    if isinstance(value, dict):
        return u'{ ' + u', '.join(
            u'%s = %s' % (_toml_key(k), _toml_value(v, '%s.%s' % (where, k)))
            for k, v in value.items()) + u' }'
    if value is None:
        raise ValueError('definition.%s: TOML has no null; leave the key out instead' % where)
    raise ValueError('definition.%s: a %s cannot be written as TOML' % (where, type(value).__name__))


def _toml_table(table, prefix, lines):
    # Plain keys first (TOML puts them before any sub-table), then tables.
    subtables = []
    for key, value in table.items():
        where = '.'.join(prefix + [to_text(key)])
        if isinstance(value, dict):
            subtables.append((key, value))
        else:
            lines.append(u'%s = %s' % (_toml_key(key), _toml_value(value, where)))
    for key, value in subtables:
        path = prefix + [to_text(key)]
        lines.append(u'')
        lines.append(u'[%s]' % u'.'.join(_toml_key(k) for k in path))
        _toml_table(value, path, lines)


def definition_to_toml(definition):
    """A job file for ``definition`` (a dict of job-file keys), with the
    keys in the order given; nested dicts become tables."""
    lines = []
    _toml_table(definition, [], lines)
    return HEADER + u'\n'.join(lines) + u'\n'


def desired_content(module, spec, where):
    """The text of a job file from one of ``definition``/``content`` (``src``
    is read on the controller by the action plugin and arrives as content)."""
    if spec.get('definition') is not None:
        if not isinstance(spec['definition'], dict):
            raise JobctlError('%s: definition must be a dict of job-file keys' % where)
        try:
            return definition_to_toml(spec['definition'])
        except ValueError as e:
            raise JobctlError('%s: %s' % (where, to_native(e)))
    if spec.get('content') is not None:
        text = to_text(spec['content'])
        if not text.endswith(u'\n'):
            text += u'\n'
        return text
    raise JobctlError('%s: state=present needs one of definition, content or src' % where)


def check_name(name, where):
    if not isinstance(name, string_types) or not NAME_RE.match(name):
        raise JobctlError(
            '%s: %r is not a valid job name (letters, digits, _ . -, not starting with . or -, '
            'at most 100 characters; the job file is NAME.toml)' % (where, name))


# ---------------------------------------------------------------------------
# Calling jobctl


class Jobctl(object):
    """The ``jobctl`` binary on the managed host, in the mode and folders the
    task names."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.user = params['user']
        self.binary = module.get_bin_path(params['jobctl_path'], required=False) or params['jobctl_path']
        if not os.path.isabs(self.binary):
            module.fail_json(
                msg='jobctl not found on this host (jobctl_path=%s): install the jobctl package '
                    'or set jobctl_path' % params['jobctl_path'])
        self.jobs_dir = os.path.abspath(params['jobs_dir'] or self._default_jobs_dir())
        self.config = params['config']
        self.env = {}
        if self.user:
            home = user_home()
            if home != os.environ.get('HOME'):
                # become kept the caller's HOME: jobctl's per-user paths
                # (the unit folder) must be this user's.
                self.env['HOME'] = home
        if self.user and not os.environ.get('DBUS_SESSION_BUS_ADDRESS') \
                and not os.environ.get('XDG_RUNTIME_DIR'):
            # become (su, sudo) does not always set it; systemd's is here.
            runtime = '/run/user/%d' % os.geteuid()
            if os.path.isdir(runtime):
                self.env['XDG_RUNTIME_DIR'] = runtime

    def _default_jobs_dir(self):
        if not self.user:
            return '/etc/jobctl/jobs.d'
        config_home = os.environ.get('XDG_CONFIG_HOME') or os.path.join(user_home(), '.config')
        return os.path.join(config_home, 'jobctl', 'jobs.d')

    def path_of(self, name):
        return os.path.join(self.jobs_dir, name + '.toml')

    def argv(self, args):
        argv = [self.binary]
        if self.user:
            argv.append('--user')
        argv += ['--jobs-dir', self.jobs_dir]
        if self.config:
            argv += ['--config', self.config]
        return argv + list(args)

    def call(self, args, data=None):
        """Run jobctl with ``args``; returns (rc, parsed JSON or None, stdout, stderr)."""
        rc, out, err = self.module.run_command(
            self.argv(args), data=data, binary_data=True, environ_update=self.env,
            check_rc=False, expand_user_and_vars=False)
        try:
            parsed = json.loads(out) if out.strip() else None
        except ValueError:
            parsed = None
        return rc, parsed, out, err

    def json_call(self, args, ok_codes, what, data=None):
        """A ``--json`` call that must print one JSON object and exit with one
        of ``ok_codes``; otherwise a JobctlError with jobctl's own words."""
        rc, parsed, out, err = self.call(args, data=data)
        if parsed is None or rc not in ok_codes or (isinstance(parsed, dict) and parsed.get('error')):
            raise JobctlError(
                '%s: %s' % (what, error_text(parsed, out, err, rc)),
                rc=rc, report=parsed, stderr=to_text(err), cmd=' '.join(self.argv(args)))
        return rc, parsed

    def plan(self, names, given, absent, what):
        """``apply --check --json --diff``: ``given`` maps job names to
        staged files holding their desired content; ``absent`` are names
        whose files the task removes. ``names`` limits the plan (None: the
        whole folder)."""
        args = ['apply', '--check', '--json', '--diff']
        args += list(names or [])
        for name, path in given:
            args += ['--job', '%s=%s' % (name, path)]
        for name in absent:
            args += ['--absent', name]
        _rc, report = self.json_call(args, (APPLY_OK, APPLY_WOULD_CHANGE, APPLY_INVALID_SKIPPED), what)
        return report

    def apply(self, names, absent, what):
        args = ['apply', '--json', '--diff'] + list(names)
        for name in absent:
            args += ['--absent', name]
        rc, parsed, out, err = self.call(args)
        if parsed is None or rc not in (APPLY_OK, APPLY_INVALID_SKIPPED) or parsed.get('error'):
            raise JobctlError(
                '%s: %s' % (what, error_text(parsed, out, err, rc)),
                rc=rc, report=parsed, done=(parsed or {}).get('done', []),
                not_done=(parsed or {}).get('not_done', []), cmd=' '.join(self.argv(args)))
        return rc, parsed

    def run(self, name, wait):
        args = ['run', name, '--json']
        if wait:
            args.append('--wait')
        rc, parsed, out, err = self.call(args)
        if not isinstance(parsed, dict) or 'started' not in parsed:
            raise JobctlError('run %s: %s' % (name, error_text(parsed, out, err, rc)), rc=rc)
        return rc, parsed


def user_home():
    """The home of the user the module runs as: ``$HOME`` when that
    folder is theirs, else their passwd entry's (``become`` may keep the
    caller's ``HOME``)."""
    home = os.environ.get('HOME')
    try:
        if home and os.stat(home).st_uid == os.geteuid():
            return home
    except OSError:
        pass
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return home or '/'


def error_text(parsed, out, err, rc):
    """jobctl's error in one line: the message, the diagnostics as
    FILE:LINE:COL: key: message (hint), and its hints."""
    if isinstance(parsed, dict):
        parts = []
        if parsed.get('error'):
            parts.append(to_text(parsed['error']))
        diags = [format_diagnostic(d) for d in parsed.get('diagnostics') or [] if d.get('severity', 'error') == 'error']
        parts += diags
        parts += [u'hint: %s' % to_text(h) for h in parsed.get('hints') or []]
        if parts:
            return u'; '.join(parts)
    text = to_text(err).strip() or to_text(out).strip()
    return text or u'jobctl exited with status %s' % rc


def format_diagnostic(diag):
    """``FILE:LINE:COL: key: message (hint)``, as jobctl prints it."""
    where = to_text(diag.get('file') or '')
    if diag.get('line'):
        where += u':%s' % diag['line']
        if diag.get('column'):
            where += u':%s' % diag['column']
    text = where
    if diag.get('key'):
        text += u': %s' % to_text(diag['key'])
    text += u': %s' % to_text(diag.get('message') or '')
    if diag.get('hint'):
        text += u' (%s)' % to_text(diag['hint'])
    return text


# ---------------------------------------------------------------------------
# Files


def read_file(path):
    """The file's text, or None when there is none."""
    try:
        with open(path, 'rb') as f:
            return to_text(f.read(), errors='surrogate_or_strict')
    except (IOError, OSError) as e:
        if getattr(e, 'errno', None) == 2:
            return None
        raise


def wanted_owner(jobctl):
    """(uid, gid) a job file must have: root's in system mode (jobctl's
    ownership rule, docs/job-file.md), the caller's in per-user mode."""
    if jobctl.user:
        return os.geteuid(), os.getegid()
    return 0, 0


def attributes_wrong(jobctl, path):
    """What about an existing file's owner and mode jobctl's rule does not
    accept (root's, not group- or world-writable; we write 0644)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    uid, gid = wanted_owner(jobctl)
    wrong = []
    if stat.S_ISLNK(st.st_mode):
        return ['a link (replaced by a file)']
    if stat.S_IMODE(st.st_mode) != 0o644:
        wrong.append('mode %04o (wanted 0644)' % stat.S_IMODE(st.st_mode))
    if os.geteuid() == 0 and (st.st_uid != uid or st.st_gid != gid):
        wrong.append('owner %d:%d (wanted %d:%d)' % (st.st_uid, st.st_gid, uid, gid))
    return wrong


def ensure_jobs_dir(jobctl):
    if os.path.isdir(jobctl.jobs_dir):
        return
    os.makedirs(jobctl.jobs_dir, 0o755)
    os.chmod(jobctl.jobs_dir, 0o755)


def write_job_file(module, jobctl, path, content):
    """Write ``content`` to ``path`` atomically (a hidden temporary file in
    the jobs folder, which jobctl ignores, then a rename), mode 0644, owned
    by root in system mode."""
    ensure_jobs_dir(jobctl)
    fd, tmp = tempfile.mkstemp(prefix='.ansible-jobctl-', suffix='.tmp', dir=jobctl.jobs_dir)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(to_bytes(content, errors='surrogate_or_strict'))
        uid, gid = wanted_owner(jobctl)
        os.chmod(tmp, 0o644)
        if os.geteuid() == 0:
            os.chown(tmp, uid, gid)
        if os.path.islink(path):
            os.unlink(path)
        try:
            module.atomic_move(tmp, path, keep_dest_attrs=False)
        except TypeError:  # ansible-core before 2.16
            module.atomic_move(tmp, path)
        # atomic_move may give a new file the umask's mode: set ours.
        os.chmod(path, 0o644)
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_job_file(path):
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != 2:
            raise


class Staging(object):
    """A private folder outside the jobs folder for the desired content
    jobctl plans from (``--job NAME=FILE``); removed afterwards. Check mode
    writes nothing else."""

    def __init__(self, module):
        base = getattr(module, 'tmpdir', None)
        self.dir = tempfile.mkdtemp(prefix='jobctl-plan-', dir=base)

    def stage(self, name, content):
        path = os.path.join(self.dir, name + '.toml')
        with open(path, 'wb') as f:
            f.write(to_bytes(content, errors='surrogate_or_strict'))
        return path

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# Results


def job_plan(report, name):
    for job in (report or {}).get('jobs') or []:
        if job.get('job') == name:
            return job
    return None


def diagnostics_for(report, name):
    """The diagnostics of job ``name``'s file (jobctl names it
    ``<jobs folder>/NAME.toml``, also for staged content)."""
    suffix = '/' + name + '.toml'
    return [d for d in (report or {}).get('diagnostics') or [] if to_text(d.get('file') or '').endswith(suffix)]


def job_result(name, path, job, report, file_changed):
    """The per-job part of a module's result, from jobctl's plan or report."""
    job = job or {}
    change = job.get('change') or 'unchanged'
    units_written = [w.get('name') for w in job.get('writes') or []]
    units_deleted = [d.get('name') if isinstance(d, dict) else d for d in job.get('deletes') or []]
    return dict(
        name=name,
        # Not `path`: Ansible would add that file's attributes and its
        # `state` (file) over the task's own.
        job_file=path,
        change=change,
        file_changed=file_changed,
        units_written=units_written,
        units_deleted=units_deleted,
        timer_steps=job.get('timer_steps') or {},
        notes=job.get('notes') or [],
        diagnostics=diagnostics_for(report, name),
        changed=bool(file_changed or change not in ('unchanged', 'invalid')),
    )


def unit_diffs(report, names):
    """Ansible diffs (before/after) for the units of ``names`` in a report
    made with ``--diff``."""
    units = set()
    for name in names:
        job = job_plan(report, name) or {}
        for w in job.get('writes') or []:
            units.add(w.get('name'))
        for d in job.get('deletes') or []:
            units.add(d.get('name') if isinstance(d, dict) else d)
    diffs = []
    for d in (report or {}).get('diffs') or []:
        if d.get('unit') in units:
            diffs.append(dict(
                before_header=d['unit'], after_header=d['unit'],
                before=d.get('before') or u'', after=d.get('after') or u''))
    return diffs


def file_diff(path, before, after):
    return dict(before_header=path, after_header=path, before=before or u'', after=after or u'')


def invalid_msg(name, report):
    diags = [format_diagnostic(d) for d in diagnostics_for(report, name) if d.get('severity', 'error') == 'error']
    if not diags:
        job = job_plan(report, name) or {}
        diags = [to_text(n) for n in job.get('notes') or []] or [u'job %s does not validate' % name]
    return u'; '.join(diags)


# ---------------------------------------------------------------------------
# Converging a set of jobs: what `job` and `jobs` both do


def existing_job_names(jobs_dir):
    """The jobs of a folder by jobctl's rule: ``*.toml`` not starting with
    ``.`` (editor backups, ``*.dpkg-old`` and our own temporary files are
    not jobs)."""
    try:
        entries = os.listdir(jobs_dir)
    except OSError:
        return []
    return sorted(e[:-5] for e in entries if e.endswith('.toml') and not e.startswith('.'))


def converge(module, jobctl, specs, exclusive=False, on_invalid='fail_job', do_apply=True):
    """Make the job files of ``specs`` (dicts: name, state, definition,
    content) what they say and apply them.

    The plan is jobctl's ``apply --check --json --diff`` on the desired
    content (staged outside the jobs folder), so check mode predicts what the
    real run then does job by job and unit by unit. An invalid job is never
    written: its file and installed units stay as they are; with
    ``on_invalid=fail_all`` nothing at all is written.

    Returns (result, invalid): the module result (``results``,
    ``changed_jobs``, ``invalid_jobs``, ``reload``, ``diff``, ``changed``)
    and the invalid jobs' messages."""
    wanted = []
    seen = set()
    for i, spec in enumerate(specs):
        where = 'jobs[%d]' % i if len(specs) > 1 or exclusive else 'job'
        name = spec.get('name')
        check_name(name, where)
        if name in seen:
            raise JobctlError('%s: job %s is listed twice' % (where, name))
        seen.add(name)
        state = spec.get('state') or 'present'
        path = jobctl.path_of(name)
        entry = dict(name=name, state=state, path=path, current=read_file(path), pruned=False)
        if state == 'present':
            entry['desired'] = desired_content(module, spec, '%s (%s)' % (where, name))
            wrong = attributes_wrong(jobctl, path)
            entry['file_changed'] = entry['current'] != entry['desired'] or bool(wrong)
            entry['attributes'] = wrong or []
        else:
            entry['desired'] = None
            entry['file_changed'] = os.path.lexists(path)
        wanted.append(entry)
    if exclusive:
        for name in existing_job_names(jobctl.jobs_dir):
            if name not in seen:
                path = jobctl.path_of(name)
                wanted.append(dict(name=name, state='absent', path=path, current=read_file(path),
                                   desired=None, file_changed=True, pruned=True))
                seen.add(name)

    staging = Staging(module)
    try:
        given = [(e['name'], staging.stage(e['name'], e['desired'])) for e in wanted if e['state'] == 'present']
        absent = [e['name'] for e in wanted if e['state'] == 'absent']
        names = None if exclusive else [e['name'] for e in wanted]
        plan = jobctl.plan(names, given, absent, 'planning %s' % ', '.join(sorted(seen)) if seen else 'planning')
    finally:
        staging.cleanup()

    if exclusive:
        # Units installed from this folder whose files are gone already: the
        # whole-folder plan removes them too.
        for job in plan.get('jobs') or []:
            if job.get('job') not in seen and job.get('change') == 'remove':
                name = job['job']
                wanted.append(dict(name=name, state='absent', path=jobctl.path_of(name), current=None,
                                   desired=None, file_changed=False, pruned=True))
                seen.add(name)

    invalid = {}
    for e in wanted:
        job = job_plan(plan, e['name'])
        if job is not None and job.get('change') == 'invalid':
            invalid[e['name']] = invalid_msg(e['name'], plan)
    valid = [e for e in wanted if e['name'] not in invalid]
    write = not module.check_mode and not (invalid and on_invalid == 'fail_all')

    report = plan
    applied = False
    if write:
        for e in valid:
            if not e['file_changed']:
                continue
            if e['state'] == 'present':
                write_job_file(module, jobctl, e['path'], e['desired'])
            else:
                remove_job_file(e['path'])
        if do_apply and valid:
            present = [e['name'] for e in valid if e['state'] == 'present']
            gone = [e['name'] for e in valid if e['state'] == 'absent']
            _rc, report = jobctl.apply(present + gone, gone, 'applying %s' % ', '.join(present + gone))
            applied = True

    results = []
    diffs = []
    for e in wanted:
        name = e['name']
        if name in invalid:
            r = job_result(name, e['path'], job_plan(plan, name), plan, False)
            r.update(changed=False, msg=invalid[name])
        else:
            source = report if applied else plan
            r = job_result(name, e['path'], job_plan(source, name), source, e['file_changed'])
            if not do_apply:
                # The units wait for an apply: only the file counts.
                r['changed'] = e['file_changed']
                r['pending'] = r['change'] not in ('unchanged',)
            if e['file_changed']:
                diffs.append(file_diff(e['path'], e['current'], e['desired']))
            if do_apply:
                diffs += unit_diffs(source, [name])
        r['state'] = e['state']
        r['pruned'] = e['pruned']
        r['content_changed'] = e['current'] != e['desired'] and name not in invalid
        if e.get('attributes'):
            r['attributes_fixed'] = e['attributes']
        results.append(r)

    if invalid and on_invalid == 'fail_all':
        for r in results:
            r['changed'] = False
        diffs = []
    result = dict(
        results=results,
        changed_jobs=[r['name'] for r in results if r['changed']],
        invalid_jobs=sorted(invalid),
        reload=bool(report.get('reload')) and do_apply and not (invalid and on_invalid == 'fail_all'),
        jobs_dir=jobctl.jobs_dir,
        systemd_version=report.get('systemd_version'),
        changed=any(r['changed'] for r in results),
        diff=diffs,
    )
    return result, invalid


def run_result(run):
    """What ``jobctl run --json`` said, with a one-line ``msg``."""
    out = dict(
        job=run.get('job'),
        started=bool(run.get('started')),
        already_running=bool(run.get('already_running')),
        reason=run.get('reason'),
        invocation_id=run.get('invocation_id'),
        run_id=run.get('run_id'),
        result=run.get('result'),
        systemd_result=run.get('systemd_result'),
        exit_status=run.get('exit_status'),
        signal=run.get('signal'),
    )
    if not out['started']:
        out['msg'] = u'not started: %s' % to_text(run.get('message') or run.get('reason') or 'systemd began no run')
    elif out['result'] is None:
        out['msg'] = u'started (run %s)' % to_text(out['run_id'])
    elif out['signal']:
        out['msg'] = u'%s: killed by signal %s (exit status %s)' % (out['result'], out['signal'], out['exit_status'])
    else:
        out['msg'] = u'%s (exit status %s)' % (out['result'], out['exit_status'])
    return out
