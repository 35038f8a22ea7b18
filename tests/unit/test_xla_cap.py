"""Importing mnist_dvc caps XLA's CPU code at SSE4.2 (the same bits on every x86-64 CPU,
docs/reliability.md), unless XLA_FLAGS already sets a cap; other flags are kept."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(("given", "expected"), [
    (None, "--xla_cpu_max_isa=SSE4_2"),
    ("--xla_force_host_platform_device_count=2", "--xla_force_host_platform_device_count=2 --xla_cpu_max_isa=SSE4_2"),
    ("--xla_cpu_max_isa=", "--xla_cpu_max_isa="),  # the processor's own code, asked for
    ("--xla_cpu_max_isa=AVX2", "--xla_cpu_max_isa=AVX2"),
])
def test_importing_the_package_caps_xla_cpu_code_unless_a_cap_is_set(given, expected):
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"} | ({"XLA_FLAGS": given} if given is not None else {})
    code = "import os, mnist_dvc; print(os.environ['XLA_FLAGS'])"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip() == expected
