"""AttnMel's tables print the paper's cells with the paper's digits (Yan et al.,
"Melanoma Recognition via Visual Attention", IPMI 2019, Tables 2 and 3; issue 25.12)."""

from __future__ import annotations

import pytest

from reproduce import attnmel_table2, attnmel_table3, report


@pytest.mark.parametrize(
    "table, expected",
    [
        (
            attnmel_table3,
            {
                "AttnMel-CNN": ["0.3105", "0.3186", "—"],
                "AttnMel-CNN-Lesion": ["0.5533", "0.6560", "—"],
                "VGG-16-GAP": ["—", "—", "0.2825"],
            },
        ),
        (
            attnmel_table2,
            {
                "VGG-16": ["0.600", "0.824"],
                "ISIC 2017 Winner 1 [15]": ["—", "0.868"],
                "AttnMel-CNN-Bkg": ["0.647", "0.849"],
            },
        ),
    ],
    ids=["table3", "table2"],
)
def test_paper_cells_print_as_the_paper_prints_them(table, expected):
    """Table 3's four decimals keep their trailing zero (0.6560), Table 2's three (0.600);
    a cell the paper leaves empty prints as a dash."""
    _, body = report.comparison_grid(table.TABLE, {})
    printed = {row[0]: row[2::3][: len(table.TABLE.columns)] for row in body}
    for name, cells in expected.items():
        assert printed[name] == cells, name
