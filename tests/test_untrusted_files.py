"""Files from strangers (docs/security.md): each threat class with a file crafted here.

Every crafted file must be refused with tinynn's own error naming the file (and the member or
object), before anything is allocated for it, and leave the model unchanged. Cases that would
exhaust memory if the check regressed run in a child process under a memory and a time limit.
"""

import json
import os
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinynn as tn
from tinynn.errors import ArgumentError, CheckpointCorruptError
from tinynn.validation import MAX_NAME_CHARS

ROOT = Path(__file__).resolve().parents[1]


def small_model(seed=0) -> tn.Sequential:
    model = tn.Sequential([tn.layers.Input((4,)), tn.layers.Dense(3, activation="relu"),
                           tn.layers.Dense(2, activation="softmax")], seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build()
    return model


def refused(load, match: str, model=None) -> None:
    """``load()`` raises CheckpointCorruptError matching ``match``; ``model`` is unchanged."""
    before = None if model is None else model.parameters.copy()
    with pytest.raises(CheckpointCorruptError, match=match):
        load()
    if model is not None:
        np.testing.assert_array_equal(model.parameters, before)


def with_extra_member(source: Path, target: Path, name: str, data: bytes) -> None:
    """A copy of the zip ``source`` with one more member (a duplicate name is allowed)."""
    target.write_bytes(source.read_bytes())
    with warnings.catch_warnings(), zipfile.ZipFile(target, "a") as archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name"
        archive.writestr(name, data)


def central_entries(data: bytes):
    """``(offset of the central directory record, member name)`` of each entry."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        yield at, data[at + 46:at + 46 + length].decode()
        at = data.find(b"PK\x01\x02", at + 4)


# -- duplicate, undeclared and overlapping archive members ---------------------------------------
@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_a_keras_archive_with_a_member_twice_is_refused(tmp_path, h5py, member):
    small_model().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        data = archive.read(member)
    with_extra_member(tmp_path / "m.keras", tmp_path / "twice.keras", member, data)
    refused(lambda: tn.models.load_model(tmp_path / "twice.keras"),
            rf"'.*twice.keras' cannot be loaded: member '{member}' occurs twice")


def test_an_npz_with_an_entry_twice_or_undeclared_is_refused(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.npz")
    target = small_model(seed=1)
    zeros = np.zeros((4, 3), np.float32)
    for name, entry in [("twice", "param/dense/kernel.npy"), ("extra", "payload.npy"),
                        ("slot", "optimizer/evil/dense/kernel.npy")]:
        buffer = tmp_path / "entry.npy"
        np.save(buffer, zeros)
        with_extra_member(tmp_path / "m.npz", tmp_path / f"{name}.npz", entry,
                          buffer.read_bytes())
    refused(lambda: target.load_weights(tmp_path / "twice.npz"),
            r"'.*twice.npz' cannot be loaded: member 'param/dense/kernel.npy' occurs twice",
            target)
    refused(lambda: target.load_weights(tmp_path / "extra.npz"),
            r"entry 'payload' is not declared by the manifest", target)
    refused(lambda: tn.models.load_model(tmp_path / "slot.npz"),
            r"entry 'optimizer/evil/dense/kernel' is not declared")


def test_a_keras_archive_with_a_foreign_member_is_refused(tmp_path, h5py):
    small_model().save(tmp_path / "m.keras")
    with_extra_member(tmp_path / "m.keras", tmp_path / "extra.keras", "run_me.py", b"print(1)")
    refused(lambda: tn.models.load_model(tmp_path / "extra.keras"),
            r"member 'run_me.py' is not part of the format")


def test_overlapping_members_and_disagreeing_sizes_are_refused(tmp_path, h5py):
    small_model().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as src, zipfile.ZipFile(
            tmp_path / "deflated.keras", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    for source, target, size_field, problem in [
            ("deflated.keras", "overlap.keras", 20, r"member 'metadata.json' \(\d+\.\.\d+\) "
             r"overlaps member 'config.json'"),
            ("m.keras", "sizes.keras", 24, r"member 'metadata.json' declares 2 bytes but "
             r"stores \d+")]:
        data = bytearray((tmp_path / source).read_bytes())
        at = next(at for at, name in central_entries(bytes(data)) if name == "metadata.json")
        # a compressed size reaching into the next member / an uncompressed size of 2
        struct.pack_into("<I", data, at + size_field, 2 if size_field == 24 else 10**4)
        (tmp_path / target).write_bytes(bytes(data))
        refused(lambda target=target: tn.models.load_model(tmp_path / target), problem)


# -- HDF5: the sum of declared sizes, names, damaged headers --------------------------------------
BOMB = """
import io, json, resource, sys, zipfile
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
import h5py
import tinynn as tn
from tinynn.errors import CheckpointCorruptError
path = sys.argv[1]
small = tn.Sequential([tn.layers.Input((8,)), *(tn.layers.Dense(8, use_bias=False)
                                                for _ in range(40))], seed=0)
small.save(path)
with zipfile.ZipFile(path) as archive:
    config = json.loads(archive.read("config.json"))
    metadata = archive.read("metadata.json")
for layer in config["config"]["layers"]:  # 40 Dense(4096) on 4096 inputs: 2.5 GiB of kernels
    if layer["class_name"] == "Dense":
        layer["config"]["units"] = 4096
    else:
        layer["config"]["batch_shape"] = [None, 4096]
weights = io.BytesIO()
with h5py.File(weights, "w") as f:  # each kernel declared (64 MiB) and never written
    for i in range(40):
        f.create_dataset(f"layers/dense{'_' + str(i) if i else ''}/vars/0",
                         shape=(4096, 4096), dtype="f4")
with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("metadata.json", metadata)
    archive.writestr("config.json", json.dumps(config))
    archive.writestr("model.weights.h5", weights.getvalue())
try:
    tn.models.load_model(path)
except CheckpointCorruptError as error:
    print("refused:", error)
"""


def test_many_datasets_each_under_the_limit_are_refused_by_their_sum(tmp_path, h5py):
    """A .keras file whose config asks for 40 kernels of 64 MiB, each declared in its weights
    and never written: a regression would allocate 2.5 GiB for the model before reading. The
    child's address space is capped at 3 GiB (NumPy and numba take part of it); it gets
    120 s."""
    result = subprocess.run([sys.executable, "-c", BOMB, str(tmp_path / "bomb.keras")],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused:" in result.stdout
    assert "bomb.keras" in result.stdout
    assert "declare 335544320 bytes in all" in result.stdout  # refused at the 5th kernel
    assert "but store 0" in result.stdout


def write_legacy(path, h5py, layer_names, groups=("dense",)) -> None:
    """A legacy Keras 2 ``save_weights`` layout whose ``layer_names`` is given as is."""
    with h5py.File(path, "w", libver="latest") as f:  # attributes above 64 KiB allowed
        f.attrs["layer_names"] = layer_names
        for name in groups:
            f.create_group(name).attrs["weight_names"] = np.array([], dtype="S1")


@pytest.mark.parametrize("names, match", [
    ([b"."], r"/ names a member '\.'"),
    ([b"\xff\xfe"], r"reading the layer_names attribute of / failed \(UnicodeEncodeError"),
    ([b"dense"] * 2, r"the layer_names attribute of / lists 2 names \(1 distinct\)"),
])
def test_legacy_layer_names_that_are_no_names_are_refused(tmp_path, h5py, names, match):
    write_legacy(tmp_path / "w.h5", h5py, np.array(names, dtype=object))
    model = small_model()
    refused(lambda: model.load_weights(tmp_path / "w.h5"), rf"'.*w.h5' cannot be loaded: {match}",
            model)


def test_a_million_layer_names_are_refused_at_once(tmp_path, h5py):
    names = np.array([f"layer_{i}".encode() for i in range(10**6)], dtype=object)
    write_legacy(tmp_path / "w.h5", h5py, names)
    refused(lambda: small_model().load_weights(tmp_path / "w.h5"),
            r"lists 1000000 names \(1000000 distinct\), expected at most 1 distinct")


def test_weights_files_with_flipped_header_bits_raise_tinynn_errors(tmp_path, h5py):
    model = small_model()
    model.save_weights(tmp_path / "w.weights.h5")
    data = (tmp_path / "w.weights.h5").read_bytes()
    rng = np.random.default_rng(0)
    for trial in range(40):
        damaged = bytearray(data)
        for at in rng.integers(0, 2048, 4):  # the superblock and the first object headers
            damaged[at] ^= 1 << int(rng.integers(8))
        path = tmp_path / f"flipped{trial}.weights.h5"
        path.write_bytes(bytes(damaged))
        try:
            small_model(seed=1).load_weights(path)
        except CheckpointCorruptError as error:
            assert path.name in str(error)
        except tn.errors.CheckpointError as error:  # e.g. a weight of another shape
            assert path.name in str(error)


# -- .npy headers ----------------------------------------------------------------------------------
def test_an_npy_header_whose_shape_holds_a_bool_is_refused(tmp_path):
    small_model().save_weights(tmp_path / "w.weights.npz")
    with zipfile.ZipFile(tmp_path / "w.weights.npz") as src, zipfile.ZipFile(
            tmp_path / "bool.weights.npz", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "param/dense/kernel.npy":  # one padding space given up
                data = data.replace(b"'shape': (4, 3), } ", b"'shape': (True,), }")
                assert b"(True,)" in data
            dst.writestr(info, data)
    model = small_model(seed=1)
    refused(lambda: model.load_weights(tmp_path / "bool.weights.npz"),
            r"entry 'param/dense/kernel' declares the shape \(True,\), expected non-negative "
            "integers", model)


# -- names a file cannot hold ----------------------------------------------------------------------
@pytest.mark.parametrize("name, problem", [
    ("a\0b", "it contains a control character"), ("x" * (MAX_NAME_CHARS + 1),
                                                  f"it has {MAX_NAME_CHARS + 1} characters"),
    ("a/b", "it contains '/'"), ("", "it is empty"), ("\ud800", "it is not valid Unicode")])
def test_names_no_file_can_hold_are_refused_when_they_come_in(tmp_path, h5py, name, problem):
    with pytest.raises(ArgumentError, match=rf"Dense name expected a name that files can hold "
                                            rf"\({problem}"):
        tn.layers.Dense(3, name=name)
    with pytest.raises(ArgumentError, match=rf"Sequential name expected .*\({problem}"):
        tn.Sequential(name=name)
    small_model().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as src, zipfile.ZipFile(
            tmp_path / "named.keras", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][1]["config"]["name"] = name
                data = json.dumps(config).encode()
            dst.writestr(info, data)
    refused(lambda: tn.models.load_model(tmp_path / "named.keras"),
            rf"the model config is invalid \(ArgumentError: .*\({problem}")


def test_a_name_at_the_limit_saves_and_loads_in_every_format(tmp_path, h5py):
    name = "é" * MAX_NAME_CHARS
    model = tn.Sequential([tn.layers.Input((4,)), tn.layers.Dense(3, name=name)], seed=0)
    model.compile("adam", "mse")
    for file in ("m.npz", "m.keras"):
        model.save(tmp_path / file)
        assert tn.models.load_model(tmp_path / file).layers[0].name == name


# -- writing through planted links ---------------------------------------------------------------
@pytest.mark.parametrize("file", ["m.npz", "m.keras", "w.weights.npz", "w.weights.h5"])
def test_saving_over_a_symlink_replaces_the_link_not_its_target(tmp_path, h5py, file):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / file).symlink_to(victim)
    model = small_model()
    (model.save_weights if file.startswith("w.") else model.save)(tmp_path / file)
    assert victim.read_text() == "keep me"
    assert not (tmp_path / file).is_symlink() and (tmp_path / file).stat().st_size > 0
    linked_dir = tmp_path / f"dir-{file}"
    linked_dir.symlink_to(tmp_path, target_is_directory=True)
    (model.save_weights if file.startswith("w.") else model.save)(linked_dir)
    assert not linked_dir.is_symlink() and linked_dir.is_file()



# -- fuzzing: mutated valid files of every format ------------------------------------------------
FUZZ = r'''
import io, json, sys, warnings, zipfile
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
import tinynn as tn
from tinynn.errors import CheckpointError

workdir = sys.argv[1]
examples = int(sys.argv[2])

def model(seed):
    m = tn.Sequential([tn.layers.Input((4,)), tn.layers.Dense(3, activation="relu"),
                       tn.layers.Dense(2, activation="softmax")], seed=seed)
    m.compile("adam", "sparse_categorical_crossentropy")
    return m

source = model(0)
source.fit(np.ones((8, 4), np.float32), np.arange(8) % 2, epochs=1, verbose=0)
FILES = {}
for name in ("m.npz", "w.weights.npz", "m.keras", "w.weights.h5"):
    path = f"{workdir}/{name}"
    (source.save_weights if name.startswith("w.") else source.save)(path)
    FILES[name] = open(path, "rb").read()
import h5py
with h5py.File(f"{workdir}/w.legacy.h5", "w") as f:  # Keras 2's save_weights layout
    f.attrs["layer_names"] = [layer.name.encode() for layer in source.layers]
    for layer in source.layers:
        names = [f"{layer.name}/{key}:0" for key in layer.params]
        f.create_group(layer.name).attrs["weight_names"] = [n.encode() for n in names]
        for n, value in zip(names, layer.params.values()):
            f[f"{layer.name}/{n}"] = value
FILES["w.legacy.h5"] = open(f"{workdir}/w.legacy.h5", "rb").read()
model(1).load_weights(f"{workdir}/w.legacy.h5")  # the unmutated file loads

def rezip(data, edit):
    """The archive ``data`` rewritten member by member through ``edit(list of (name, bytes))``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)
        for name, content in edit(members):
            archive.writestr(name, content)
    return out.getvalue()

@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(FILES)))
    data = bytearray(FILES[name])
    kind = draw(st.sampled_from(["flip", "truncate", "rename", "duplicate", "header"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif kind in ("rename", "duplicate") and not name.endswith(".h5"):
        pick = draw(st.integers(0, 50))
        new = draw(st.sampled_from(["config.json", "x.npy", "param/dense/kernel.npy",
                                    "manifest.npy", "../evil", "model.weights.h5"]))
        def edit(members):
            i = pick % len(members)
            if kind == "rename":
                members[i] = (new, members[i][1])
            else:
                members.append(members[i])
            return members
        data = bytearray(rezip(bytes(data), edit))
    else:  # edit a byte of a .npy header, a JSON config or an HDF5 superblock
        anchor = max(data.find(b"{'descr'"), data.find(b'{"module"'), 0)
        at = anchor + draw(st.integers(0, 63))
        if at < len(data):
            data[at] = draw(st.integers(0, 255))
    return name, bytes(data)

counts = {"loaded": 0, "refused": 0}

@settings(max_examples=examples, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(mutated())
def check(case):
    name, data = case
    path = f"{workdir}/fuzz-{name}"
    with open(path, "wb") as f:
        f.write(data)
    try:
        if name.startswith("w."):
            model(1).load_weights(path)
        else:
            tn.models.load_model(path)
        counts["loaded"] += 1
    except CheckpointError as error:
        assert path in str(error) or f"fuzz-{name}" in str(error), error
        counts["refused"] += 1

check()
print(json.dumps(counts))
'''


def test_mutated_files_of_every_format_load_or_fail_with_tinynn_errors(tmp_path, h5py):
    """Hypothesis mutates valid files of every format (.npz, .weights.npz, .keras,
    .weights.h5, legacy .h5: bit flips, truncation, renamed and duplicated members, header
    bytes): each must load or raise a CheckpointError naming the file, never another
    exception. In a child process with a time limit, so a crash or a hang in h5py's C code
    fails this test instead of the suite."""
    result = subprocess.run([sys.executable, "-c", FUZZ, str(tmp_path), "1500"],
                            capture_output=True, text=True, timeout=240,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["refused"] > 100 and counts["loaded"] + counts["refused"] >= 1500


# -- limits raised (or lowered) deliberately -----------------------------------------------------
def test_limits_are_arguments_named_by_the_errors_that_hit_them(tmp_path, h5py):
    """Zeros compressed 1000-fold: within the defaults (under the 256 MiB floor), refused under
    a 1 KiB floor with the limit to raise named, and loaded once it is raised."""
    model = tn.Sequential([tn.layers.Input((256,)), tn.layers.Dense(64)], seed=0)
    model.build()
    model.set_weights([np.zeros((256, 64), np.float32), np.zeros(64, np.float32)])
    model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5", "r+") as f:
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", data=np.zeros((256, 64), np.float32),
                         chunks=(256, 64), compression="gzip")
    target = tn.Sequential([tn.layers.Input((256,)), tn.layers.Dense(64)], seed=1)
    target.build()
    low = tn.saving.LoadLimits(expansion_floor_bytes=1024)
    refused(lambda: target.load_weights(tmp_path / "w.weights.h5", limits=low),
            r"/layers/dense/vars/0 declares 65536 bytes but stores \d+ \(for a file you trust, "
            r"raise it with limits=LoadLimits\(max_expansion=\.\.\.\)\)", target)
    target.load_weights(tmp_path / "w.weights.h5", limits=tn.saving.LoadLimits(
        expansion_floor_bytes=1024, max_expansion=10**6))
    np.testing.assert_array_equal(target.get_weights()[0], 0)
    target.load_weights(tmp_path / "w.weights.h5")  # the defaults


def test_every_bound_is_a_limit_and_limits_are_checked(tmp_path, h5py):
    model = small_model()
    model.save(tmp_path / "m.npz")
    refused(lambda: tn.models.load_model(tmp_path / "m.npz", limits=tn.saving.LoadLimits(
        max_config_bytes=100)), r"expected at most max_config_bytes=100 bytes of uint8; for a "
        r"file you trust, raise it with limits=LoadLimits\(max_config_bytes=\.\.\.\)")
    model.save(tmp_path / "m.keras")
    refused(lambda: tn.models.load_model(tmp_path / "m.keras", limits=tn.saving.LoadLimits(
        max_config_bytes=100)), r"config.json declares \d+ bytes, more than max_config_bytes=100")
    write_legacy(tmp_path / "w.h5", h5py, np.array([b"dense"], dtype=object))
    with h5py.File(tmp_path / "w.h5", "r+") as f:
        f["dense"].attrs["weight_names"] = np.array([b"a", b"b"], dtype=object)
    refused(lambda: small_model().load_weights(tmp_path / "w.h5", limits=tn.saving.LoadLimits(
        max_weights_per_layer=1)), r"lists 2 names \(2 distinct\), expected at most 1 distinct "
        r"names; for a file you trust, raise it with limits=LoadLimits\(max_weights_per_layer")
    for wrong, problem in [(tn.saving.LoadLimits, r"LoadLimits max_expansion expected a positive "
                            r"int, got 0"), (dict, r"limits expected a tinynn.saving.LoadLimits "
                                                   r"or None, got dict")]:
        with pytest.raises(ArgumentError, match=problem):
            tn.models.load_model(tmp_path / "m.npz", limits=wrong(max_expansion=0))
