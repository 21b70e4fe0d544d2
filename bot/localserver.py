"""Entry point of the local model's child process (started by bot/localmodel.py).

It is `python -m llama_cpp.server`, same arguments, with one change made before the model loads:
llama.cpp's "extra buffer types" (weights repacked for special CPU kernels, AMX among them) are
turned off. Why: on virtual machines that advertise AMX without delivering it (Firecracker, as on
this project's 2-core CI machine) the AMX kernel faults at `ldtilecfg` with SIGSEGV on the first
prompt longer than one token, and a source build with `-march=native` always compiles it in. For
SmolLM2's Q4_1 weights only the AMX kernels repack at all, so elsewhere nothing is lost.

Only this child imports `llama_cpp`; the bot's own process never loads the native library.
"""

from __future__ import annotations

import runpy
from typing import Any


def disable_extra_buffer_types() -> bool:
    """Make every `Llama` load with `use_extra_bufts = False`; False if this llama-cpp-python has
    no such switch (older versions, which have no AMX kernels either)."""
    import llama_cpp.llama_cpp as native

    if "use_extra_bufts" not in {field[0] for field in native.llama_model_params._fields_}:
        return False
    default = native.llama_model_default_params

    def params() -> Any:
        chosen = default()
        chosen.use_extra_bufts = False
        return chosen

    native.llama_model_default_params = params
    return True


def main() -> None:
    disable_extra_buffer_types()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
