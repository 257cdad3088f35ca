"""conftest.py turns a skip for a missing prerequisite into a failure (issue 10)."""
import os
import shutil
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(tmp_path, body):
    shutil.copy(os.path.join(HERE, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path)


def test_a_missing_data_set_fails_the_run(tmp_path):
    done = _run(tmp_path, """
        import os, pytest
        @pytest.mark.skipif(not os.path.exists("/nonexistent/t10k-labels-idx1-ubyte.gz"), reason="Fashion-MNIST not installed")
        def test_needs_data():
            pass
        def test_skips_inside():
            pytest.skip("no shipped model")
        """)
    assert done.returncode != 0, done.stdout
    assert "missing prerequisite is a failure: Skipped: Fashion-MNIST not installed" in done.stdout
    assert "missing prerequisite is a failure: Skipped: no shipped model" in done.stdout


def test_a_missing_module_fails_collection(tmp_path):
    done = _run(tmp_path, """
        import pytest
        pytest.importorskip("no_such_module_for_quantal")
        def test_x():
            pass
        """)
    assert done.returncode != 0, done.stdout


def test_optional_features_and_xfail_keep_their_meaning(tmp_path):
    done = _run(tmp_path, """
        import pytest
        @pytest.mark.optional("an optional feature")
        @pytest.mark.skipif(True, reason="feature not built")
        def test_optional():
            pass
        @pytest.mark.xfail(reason="known")
        def test_known():
            assert False
        def test_fine():
            pass
        """)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in done.stdout
