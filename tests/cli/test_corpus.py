"""Malformed input through the real command line: exit 2, one line naming the field, no
traceback, and nothing written. Most cases run in this process through `main(argv)`; a few
run as real processes, where a traceback or a usage block would show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.cli import main
from tests.helpers import subprocess_env

BAD_PLUGINS = {
    "bad_raises": "raise RuntimeError('plugin broke on import')\n",
    "bad_syntax": "def broken(:\n",
    "bad_duplicate": (
        "from benchmark.models import MODELS, ModelPreset\n"
        "MODELS.register('ns', ModelPreset(loss='ns'))\n"
    ),
}

TRIAL = ("trial", "--plugin", "ganbench_testplugin", "--dataset", "tiny", "--model", "ns")
TRIAL += ("--steps", "4", "--batch-size", "16", "--out", "{root}/out")

# (extra arguments, the field the one line must name). {root} is the test's folder.
TRIAL_CASES = [
    (("--lr", "inf"), "lr=inf"),
    (("--lr=-inf",), "lr=-inf"),
    (("--lr", "nan"), "lr=nan"),
    (("--lr", "0"), "lr=0.0"),
    (("--lr", "abc"), "--lr"),
    (("--beta1", "inf"), "beta1=inf"),
    (("--beta1", "1.5"), "beta1=1.5"),
    (("--beta2", "nan"), "beta2=nan"),
    (("--beta2", "1"), "beta2=1.0"),
    (("--model", "wgan", "--clip", "inf"), "clip=inf"),
    (("--model", "wgan_gp", "--lam", "inf"), "lam=inf"),
    (("--model", "began", "--lambda-k", "inf"), "lambda_k=inf"),
    (("--model", "began", "--gamma", "nan"), "gamma=nan"),
    (("--bn-momentum", "inf"), "bn_momentum=inf"),
    (("--bn-momentum", "0"), "bn_momentum=0.0"),
    (("--n-disc", "0"), "n_disc=0"),
    (("--n-disc", "1.5"), "--n-disc"),
    (("--batch-size", "0"), "batch_size=0"),
    (("--batch-size", "100000"), "batch_size=100000"),
    (("--z-dim", "0"), "z_dim=0"),
    (("--z-dim", "1000000000"), "z_dim=1000000000"),
    (("--steps", "0"), "steps=0"),
    (("--steps", "1000000000000"), "steps=1000000000000"),  # a typo: 10^12 D steps
    (("--data-order", "sideways"), "data_order='sideways'"),
    (("--latent-pool", "-1"), "latent_pool=-1"),
    (("--latent-pool", "8"), "latent_pool=8"),  # fewer z than a batch of 16
    (("--steps", "1e3"), "--steps"),
    (("--eval-every-epochs", "0"), "eval_every_epochs=0.0"),
    (("--epochs", "inf"), "epochs=inf"),
    (("--steps", "5", "--epochs", "2"), "epochs=2.0"),
    (("--seed", "-1"), "seed=-1"),
    (("--seed", str(2**64)), "seed="),
    (("--fid-n-real", "1"), "fid_n_real=1"),
    (("--fid-n-fake", "1000000000"), "fid_n_fake=1000000000"),
    (("--polygon-n-precision", "0"), "polygon_n_precision=0"),
    (("--polygon-n-recall", "1000000000"), "polygon_n_recall=1000000000"),
    (("--polygon-steps", "10000000"), "polygon_steps=10000000"),
    (("--metrics", "bogus"), "metrics='bogus'"),
    (("--metrics", "fid,nope"), "metrics='nope'"),
    (("--feature-extractor", "nope"), "feature_extractor='nope'"),
    (("--amp-dtype", "fp8"), "amp_dtype='fp8'"),
    (("--loss", "nope"), "loss='nope'"),
    (("--penalty", "nope"), "penalty='nope'"),
    (("--generator", "nope"), "generator='nope'"),
    (("--discriminator", "nope"), "discriminator='nope'"),
    (("--model", "nope"), "model='nope'"),
    (("--dataset", "nope"), "dataset='nope'"),
    (("--learning-rate", "1e-3"), "--learning-rate"),
    (("--d-bn=maybe",), "--d-bn"),
    (("--out", ""), "out=''"),
    (("--out", "{root}/afile"), "out='{root}/afile'"),
    (("--out", "{root}/afile/sub"), "lies under {root}/afile"),
    (("--device", "foo"), "device='foo'"),
    (("--device", ""), "device=''"),
    (("--device", "cuda:99"), "device='cuda:99'"),
    (("--device", "mps"), "device='mps'"),
    (("--plugin", "bad_raises"), "plugins='bad_raises'"),
    (("--plugin", "bad_syntax"), "plugins='bad_syntax'"),
    (("--plugin", "bad_duplicate"), "plugins='bad_duplicate'"),
    (("--plugin", "no_such_module"), "plugins='no_such_module'"),
    (("--plugin", ""), "plugins=''"),
    (("--plugin", "../up"), "plugins='../up'"),
    (("--metrics", "fid", "--weights", "/nonexistent/w.pt"), "weights='/nonexistent/w.pt'"),
    (("--metrics", "fid", "--weights", "{root}/afile"), "weights='{root}/afile'"),
    (("--metrics", "fid", "--weights", "{root}/empty.pt"), "weights='{root}/empty.pt'"),
    (("--metrics", "fid"), "weights=None"),  # no weights anywhere, and no --download
    (("--metrics", "fid", "--feature-extractor", "tiny", "--weights", "x.pt"), "weights='x.pt'"),
    (("--dataset", "mnist", "--data-root", "{root}/nodata"), "{root}/nodata/mnist"),
    (("--dataset", "ring", "--networks", "mlp"), "generator='mlp'"),  # sigmoid: [0, 1] only
]
if not torch.cuda.is_available():
    TRIAL_CASES.append((("--device", "cuda"), "device='cuda'"))

SPEC = """plugins = ["ganbench_testplugin"]
datasets = ["tiny"]
models = ["ns"]
steps = 4
batch_size = 16
metrics = ["fid"]
feature_extractor = "tiny"
device = "cpu"
"""

# (spec text, or bytes, and the field the line must name); run as `sweep {root}/<i>.toml`.
SPEC_CASES = [
    (SPEC.encode() + b"name = '\xff\xfe'\n", "UTF-8"),
    (SPEC + "lr = inf\n", "lr=inf"),
    (SPEC + "lr = nan\n", "lr=nan"),
    (SPEC + "beta1 = -inf\n", "beta1=-inf"),
    (SPEC + "z_dim = 1000000000\n", "z_dim=1000000000"),
    (SPEC.replace("batch_size = 16", "batch_size = 0"), "batch_size=0"),
    (SPEC.replace("steps = 4", 'steps = "10"'), "steps='10'"),
    (SPEC.replace('models = ["ns"]', "models = []"), "models=[]"),
    (SPEC.replace('datasets = ["tiny"]', 'datasets = ["nope"]'), "datasets=['nope']"),
    (SPEC + 'space = "wide"\nsamples = 1000000000\n', "samples=1000000000"),
    (SPEC + "seeds = 1000000000\n", "seeds=1000000000"),
    (SPEC + "seeds = [1, 1]\n", "seeds=[1, 1]"),
    (SPEC.replace('metrics = ["fid"]', 'metrics = ["nope"]'), "metrics='nope'"),
    (SPEC.replace('metrics = ["fid"]', "metrics = []"), "metrics=[]"),
    (SPEC + 'metric = "f1"\n', "metric='f1'"),
    (SPEC.replace('"tiny"\ndevice', '"nope"\ndevice'), "feature_extractor='nope'"),
    (SPEC.replace('device = "cpu"', 'device = "foo"'), "device='foo'"),
    (SPEC.replace('device = "cpu"', 'device = "cuda:99"'), "device='cuda:99'"),
    (SPEC + 'executor = "cloud"\n', "executor='cloud'"),
    (SPEC + "[local]\nworkers_per_gpu = 0\n", "workers_per_gpu=0"),
    (SPEC + "learning_rate = 1\n", "learning_rate=1"),
    (SPEC + 'name = ""\n', "name=''"),
    (SPEC + "steps = \n", "toml="),
    (SPEC + "[local]\n[local]\n", "toml="),
    (SPEC.replace('"ganbench_testplugin"', '"ganbench_testplugin", "bad_raises"'), "bad_raises"),
    (SPEC.replace('"ganbench_testplugin"', '"ganbench_testplugin", "bad_syntax"'), "bad_syntax"),
    (SPEC.replace('"ganbench_testplugin"', '"ganbench_testplugin", "bad_duplicate"'), "plugins"),
    (SPEC.replace('feature_extractor = "tiny"\n', ""), "weights=None"),
    (SPEC + 'name = "afile"\n', "sweep directory='{root}/afile'"),
    (SPEC + 'executor = "slurm"\npopulation = "auto"\n', "population='auto'"),
]

OTHER_CASES = [
    (("sweep", "{root}/missing.toml"), "spec='{root}/missing.toml'"),
    (("sweep", "{root}/adir.toml"), "spec='{root}/adir.toml'"),
    (("sweep",), "spec"),
    (("sweep", "{root}/0.toml", "--executor", "cloud"), "--executor"),
    (("sweep", "{root}/ok.toml", "--device", "foo"), "device='foo'"),
    (("sweep", "{root}/ok.toml", "--weights", "/nonexistent.pt"), "weights="),
    (("trian",), "trian"),
    ((), "command"),
    (("fid", "{root}/a.npz", "{root}/b.npz", "--batch-size", "0"), "batch_size=0"),
    (("fid", "{root}/a.npz", "{root}/b.npz", "--batch-size", "10000000"), "batch_size="),
    (("fid", "{root}/a.npz", "{root}/b.npz", "--device", "foo"), "device='foo'"),
    (("fid", "{root}/garbage.npz", "{root}/b.npz"), "npz='{root}/garbage.npz'"),
    (("fid", "{root}/a.npz", "{root}/float.npz"), "x='float32'"),
    (("fid", "{root}/a.npz", "{root}/nox.npz"), "npz='{root}/nox.npz'"),
    (("fid", "{root}/a.npz", "{root}/one.npz"), "images='{root}/one.npz'"),
    (("fid", "{root}/a.npz", "{root}/flat.npz"), "x=(8,)"),
    (("fid", "{root}/a.npz", "{root}/pngs"), "image='{root}/pngs/0.png'"),
    (("fid", "{root}/a.npz", "{root}/afile"), "path='{root}/afile'"),
    (("fid", "{root}/a.npz", "{root}/missing"), "path='{root}/missing'"),
    (("fid", "{root}/a.npz", "{root}/b.npz", "--extractor", "nope"), "--extractor"),
    (("fid", "{root}/a.npz", "{root}/b.npz", "--extractor", "tiny", "--weights", "w"), "weights"),
    (("fid", "{root}/a.npz", "{root}/b.npz"), "weights=None"),
    (("fid", "{root}/a.npz", "{root}/b.npz", "--weights", "{root}/afile"), "weights="),
    (("report", "{root}/sweep", "--out", "{root}/afile"), "out='{root}/afile'"),
    (("report", "{root}/sweep", "--out", "{root}/afile/x"), "out='{root}/afile/x'"),
    (("report", "{root}/sweep", "--expected-trials", "-3"), "expected_trials=-3"),
    (("report", "{root}/sweep", "--expected-trials", "0"), "expected_trials=0"),
    (("report", "{root}/sweep", "--direction", "sideways"), "--direction"),
    (("report", "{root}/missing"), "{root}/missing"),
    (("list", "--plugin", "bad_raises"), "plugins='bad_raises'"),
    (("sweep", "{root}/running.toml"), "sweep directory='{root}/running'"),  # .running: a dir
    (("gpu-check", "--tiny", "--out", ""), "out=''"),  # not the working directory
    (
        ("gpu-check", "--tiny", "--out", "{root}/gc", "--time-limit", "1e12"),
        "time-limit=1000000000000.0",
    ),
    ((*TRIAL, "--out", "{root}/" + "a/" * 2100), "out='{root}/a/a/"),  # past PATH_MAX
]


def build_inputs(root: Path) -> None:
    """The files the cases point at: a plain file, specs, image archives, broken images."""
    (root / "afile").write_text("not a directory, not weights\n")
    (root / "empty.pt").write_bytes(b"")
    (root / "adir.toml").mkdir()
    (root / "sweep" / "trials").mkdir(parents=True)
    (root / "nodata").mkdir()
    (root / "cache").mkdir()
    (root / "torchhome").mkdir()
    for i, (text, _) in enumerate(SPEC_CASES):
        data = text if isinstance(text, bytes) else text.encode()
        (root / f"{i}.toml").write_bytes(data)
    (root / "ok.toml").write_text(SPEC)
    (root / "running.toml").write_text(SPEC)
    (root / "running" / ".running").mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8), dtype=np.uint8)
    np.savez(root / "a.npz", x=images)
    np.savez(root / "b.npz", x=images[::-1])
    np.savez(root / "float.npz", x=images.astype(np.float32))
    np.savez(root / "nox.npz", y=images)
    np.savez(root / "one.npz", x=images[:1])
    np.savez(root / "flat.npz", x=np.zeros(8, np.uint8))
    (root / "garbage.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    (root / "pngs").mkdir()
    (root / "pngs" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (root / "pngs" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")


def snapshot(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def all_cases() -> list[tuple[tuple[str, ...], str]]:
    cases = [((*TRIAL, *extra), field) for extra, field in TRIAL_CASES]
    cases += [(("sweep", f"{{root}}/{i}.toml"), field) for i, (_, field) in enumerate(SPEC_CASES)]
    return cases + OTHER_CASES


@pytest.fixture
def corpus_root(plugin, tmp_path, monkeypatch, tmp_path_factory):
    """A folder with every input file, as cwd; bad plugins importable; no weights anywhere."""
    root = tmp_path / "corpus"
    root.mkdir()
    build_inputs(root)
    plugins = tmp_path_factory.mktemp("bad_plugins")
    for name, text in BAD_PLUGINS.items():
        (plugins / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.chdir(root)
    monkeypatch.setenv("GANBENCH_CACHE", str(root / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torchhome"))
    monkeypatch.delenv("GANBENCH_INCEPTION", raising=False)
    monkeypatch.delenv("GANBENCH_DATA", raising=False)
    monkeypatch.setenv("GANBENCH_TEST_MARKERS", "0")  # the plugin's run log is a file too
    env = subprocess_env(plugin)
    env["PYTHONPATH"] = f"{plugins}{os.pathsep}{env['PYTHONPATH']}"
    return root, env


def test_corpus_of_malformed_input(corpus_root, capsys):
    """Every case: exit 2, one line on stderr that names the field, no traceback, no file."""
    root, _ = corpus_root
    broken = []
    for argv, field in all_cases():
        before = snapshot(root)  # a failing case is reported once, not in every later one
        argv = [arg.format(root=root) for arg in argv]
        field = field.format(root=root)
        try:
            code: object = main(argv)
        except BaseException as error:  # a crash is one broken case, not the end of the corpus
            code = f"{type(error).__name__} raised"
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        ok = (
            code == 2
            and len(lines) == 1
            and lines[0].startswith("error: ")
            and field in lines[0]
            and "Traceback" not in captured.err + captured.out
            and snapshot(root) == before
        )
        if not ok:
            created = sorted(set(snapshot(root)) - set(before))
            broken.append(f"{argv}: exit {code}, stderr {captured.err!r}, created {created}")
    print(f"corpus: {len(all_cases())} cases tried, {len(all_cases()) - len(broken)} held")
    assert not broken, "\n".join(broken)
    assert len(all_cases()) >= 120


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (("trial", "--plugin", "bad_raises", "--dataset", "polygons", "--model", "ns"), "plugins"),
        (("sweep", "{root}/0.toml"), "UTF-8"),
        (("trial", "--dataset", "polygons", "--model", "ns", "--lr", "x"), "--lr"),
    ],
)  # fmt: skip
def test_real_processes_print_one_line_and_no_usage_block(corpus_root, argv, field):
    root, env = corpus_root
    before = snapshot(root)
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", *(a.format(root=root) for a in argv)],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], done.stderr
    assert "usage:" not in done.stderr and done.stdout == ""
    assert snapshot(root) == before
