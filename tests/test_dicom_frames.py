"""Issue 26.6: ultrasound cine loops. Multi-frame DICOM is predicted frame by frame
(masks and overlays named <stem>_frame<NNN>, frames numbered from 1 as DICOM numbers
them), and the mask-folder and Labelme readers take an annotation naming a frame.
The files are pydicom's own ultrasound test files: a 30-frame YBR_FULL_422 JPEG
Baseline cine loop, palette colour, RGB and JPEG 2000 single frames."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")

import zoo  # noqa: E402
from data_tools.folders import read_labelme, read_mask_folder  # noqa: E402
from data_tools.imageio import frame_count, load_image  # noqa: E402
from data_tools.layouts import frame_stem, split_frame_stem  # noqa: E402
from data_tools.preprocess import preprocess_images, restore_geometry  # noqa: E402
from data_tools.records import DatasetError  # noqa: E402
from zoo.predict import load_predictor, main, parse_frames, predict_images  # noqa: E402

CINE = "examples_ybr_color.dcm"  # US, 30 frames, YBR_FULL_422, JPEG Baseline
SINGLE_FRAMES = ("examples_palette.dcm", "examples_rgb_color.dcm", "examples_jpeg2k.dcm")


def _testdata(name: str):
    """A pydicom test file whose pixels this machine decodes (skipped, saying which
    decoder is missing, where none is installed)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom's test file {name} is not installed")
    dataset = pydicom.dcmread(path)
    try:
        _ = dataset.pixel_array
    except Exception as error:  # RuntimeError: no plugin for the transfer syntax
        pytest.skip(f"{name}: no decoder for {dataset.file_meta.TransferSyntaxUID.name} here ({error})")
    return path, dataset


@pytest.fixture
def cine(tmp_path):
    """``scans/cine.dcm``: the 30-frame cine loop, and its frames as pydicom decodes them."""
    path, dataset = _testdata(CINE)
    folder = tmp_path / "scans"
    folder.mkdir()
    shutil.copy(path, folder / "cine.dcm")
    return folder / "cine.dcm", dataset.pixel_array  # (30, 240, 320, 3) RGB (pydicom converts YBR)


@pytest.fixture(scope="module")
def apspnet():
    model = zoo.get_model("apspnet").build(small=True)
    return model, load_predictor("apspnet", keras_model=model)


def _expected_classes(model, predictor, image):
    probabilities = model(preprocess_images(image[None], predictor.spec), training=False).numpy()[0]
    return restore_geometry(probabilities, image.shape[:2], predictor.spec).numpy().argmax(-1)


def test_frame_names_count_from_one_with_three_digits_or_more():
    assert frame_stem("cine", 12, 30) == "cine_frame012"
    assert frame_stem("cine", 12, 1200) == "cine_frame0012"
    assert split_frame_stem("cine_frame012") == ("cine", 12)
    assert split_frame_stem("a_frame_b_frame7") == ("a_frame_b", 7)
    assert split_frame_stem("cine") is None and split_frame_stem("cine_frame") is None


def test_one_frame_is_decoded_as_pydicom_decodes_the_whole_loop(cine):
    path, frames = cine
    assert frame_count(path) == 30
    for frame in (1, 12, 30):
        np.testing.assert_array_equal(load_image(path, frame), frames[frame - 1])
    with pytest.raises(DatasetError, match=r"cine\.dcm: multi-frame DICOM \(30 frames\): read one frame at a time"):
        load_image(path)
    with pytest.raises(DatasetError, match=r"no frame 31: the file has 30 frame\(s\), numbered from 1"):
        load_image(path, 31)


@pytest.mark.parametrize("name", SINGLE_FRAMES)
def test_single_frame_ultrasound_files_read_as_rgb(name):
    """Palette colour through its lookup table (16-bit entries: 65535 -> 255, i.e.
    divided by 257), RGB as stored, JPEG 2000 (YBR_RCT) as pydicom converts it."""
    from pydicom.pixels import apply_color_lut

    path, dataset = _testdata(name)
    expected = dataset.pixel_array
    if dataset.PhotometricInterpretation == "PALETTE COLOR":
        expected = apply_color_lut(expected, dataset)
        assert expected.dtype == np.uint16
        expected = np.rint(expected / 257).astype(np.uint8)
    assert frame_count(path) == 1
    np.testing.assert_array_equal(load_image(path), expected)


def test_predict_writes_one_mask_per_frame_of_a_real_cine_loop(tmp_path, cine, apspnet):
    path, frames = cine
    model, predictor = apspnet
    summary = predict_images(predictor, path.parent, tmp_path / "masks", format="masks", batch_size=10)
    names = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert names == [f"cine_frame{k:03d}.png" for k in range(1, 31)]
    assert summary.predicted == [f"cine_frame{k:03d}" for k in range(1, 31)]
    for frame in (1, 17):
        mask = np.asarray(Image.open(tmp_path / "masks" / f"cine_frame{frame:03d}.png"))
        np.testing.assert_array_equal(mask, _expected_classes(model, predictor, frames[frame - 1]))


def test_the_frames_asked_for_with_their_overlays_from_the_command_line(tmp_path, cine, apspnet):
    path, _ = cine
    weights = tmp_path / "apspnet.weights.h5"
    apspnet[0].save_weights(weights)
    assert (
        main(
            [
                "--model",
                "apspnet",
                "--weights",
                str(weights),
                "--small",
                "--images",
                str(path),
                "--out",
                str(tmp_path / "out"),
                "--format",
                "masks",
                "--frames",
                "2,29-30",
                "--overlays",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cine_frame002.png",
        "cine_frame029.png",
        "cine_frame030.png",
    ]
    overlays = sorted(p.name for p in (tmp_path / "out_overlays").iterdir())
    assert [name for name in overlays if name.endswith("_prediction.png")] == [
        "cine_frame002_prediction.png",
        "cine_frame029_prediction.png",
        "cine_frame030_prediction.png",
    ]


def test_a_frame_the_file_lacks_is_named_or_skipped(tmp_path, cine, apspnet, capsys):
    path, _ = cine
    _, predictor = apspnet
    with pytest.raises(DatasetError, match=r"cine\.dcm: --frames asks for frame 31: the file has 30 frames"):
        predict_images(predictor, path, tmp_path / "out", frames=(30, 31))
    summary = predict_images(predictor, path, tmp_path / "skip", frames=(31,), skip_bad=True)
    assert summary.predicted == [] and "frame 31" in (tmp_path / "skip" / "skipped.txt").read_text()


def test_frames_option_reads_numbers_and_ranges_from_one():
    assert parse_frames("all") is None
    assert parse_frames("1,5-9") == (1, 5, 6, 7, 8, 9)
    assert parse_frames(" 3 , 2-3") == (2, 3)
    for bad in ("0", "3-1", "a", "1,", "-2"):
        with pytest.raises(ValueError, match="--frames"):
            parse_frames(bad)


def test_mask_folder_takes_masks_that_name_a_frame(tmp_path, cine):
    path, frames = cine
    masks = tmp_path / "masks"
    masks.mkdir()
    truth = {}
    for frame in (3, 10):
        truth[frame] = np.zeros((240, 320), np.uint8)
        truth[frame][40:120, 50 + frame : 200] = 255
        Image.fromarray(truth[frame]).save(masks / f"cine_frame{frame:03d}_mask.png")
    records = read_mask_folder(path.parent, masks, mask_suffix="_mask", cache_dir=tmp_path / "cache")
    assert [r.image_id for r in records] == ["cine_frame003", "cine_frame010"]
    for record, frame in zip(records, (3, 10), strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(record.image_path)), frames[frame - 1])
        assert record.mask_paths["mask"] == masks / f"cine_frame{frame:03d}_mask.png"


def test_mask_folder_names_a_frame_out_of_range_and_a_mask_naming_no_frame(tmp_path, cine):
    path, _ = cine
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.zeros((240, 320), np.uint8)).save(masks / "cine_frame031.png")
    with pytest.raises(DatasetError, match=r"cine_frame031\.png: names frame 31 of cine\.dcm, which has 30 frames"):
        read_mask_folder(path.parent, masks, cache_dir=tmp_path / "cache")
    (masks / "cine_frame031.png").rename(masks / "cine.png")
    with pytest.raises(
        DatasetError,
        match=r"cine\.png: cine\.dcm has 30 frames: name the frame the mask annotates, "
        r"e\.g\. cine_frame001\.png",
    ):
        read_mask_folder(path.parent, masks, cache_dir=tmp_path / "cache")


def test_labelme_image_path_naming_a_frame_of_the_cine_loop(tmp_path, cine):
    path, frames = cine
    annotation = {
        "shapes": [{"label": "kidney", "points": [[60, 40], [250, 50], [150, 200]], "shape_type": "polygon"}],
        "imagePath": "cine_frame007.png",
        "imageHeight": 240,
        "imageWidth": 320,
    }
    (path.parent / "cine_frame007.json").write_text(json.dumps(annotation))
    (record,) = read_labelme(path.parent, {"kidney": 1}, cache_dir=tmp_path / "cache")
    assert record.image_id == "cine_frame007"
    np.testing.assert_array_equal(np.asarray(Image.open(record.image_path)), frames[6])
    assert np.asarray(Image.open(record.mask_paths["classes"])).max() == 1

    (path.parent / "cine_frame007.json").write_text(json.dumps({**annotation, "imagePath": "cine.dcm"}))
    with pytest.raises(
        DatasetError,
        match=r"cine_frame007\.json: imagePath 'cine\.dcm' has 30 frames: name the "
        r"annotated one, e\.g\. cine_frame001\.png",
    ):
        read_labelme(path.parent, {"kidney": 1}, cache_dir=tmp_path / "cache2")
