# -*- coding: utf-8 -*-
# Copyright: jobctl contributors
# SPDX-License-Identifier: MIT OR Apache-2.0 (as jobctl)
"""jobctl.core.jobs: each job's ``src`` is read on the controller (see job.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.jobctl.core.plugins.action.job import ActionModule  # noqa: F401 pylint: disable=unused-import
