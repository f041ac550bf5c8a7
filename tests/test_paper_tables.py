"""The papers' own numbers as the table scripts transcribe them: what the notes say of
them must follow from the values, not be typed beside them."""

from reproduce import sanet_table4


def test_sanet_table4_notes_name_exactly_the_papers_inconsistent_macro_averages():
    """Issue 15: SANet's macro Dice 50.2 vs 50.04, ResNet151's macro Jaccard 24.5 vs 24.98."""
    notes = sanet_table4.macro_inconsistencies(sanet_table4.PAPER_ROWS)
    assert len(notes) == 2
    assert (
        "ResNet151's macro Jaccard is printed as 24.5, but the mean of its five attribute values is 24.98" in notes[0]
    )
    assert "SANet's macro Dice is printed as 50.2, but the mean of its five attribute values is 50.04" in notes[1]
    assert set(notes) <= set(sanet_table4.TABLE.notes)


def test_notes_give_the_papers_image_counts_as_the_papers():
    """A smoke run of 32/8 images must not read "2094 training / 500 test images" as
    what it ran (issue 26): counts in the notes are qualified as the paper's; the
    images a run used are in its "This run" note (reproduce.report.run_notes)."""
    from reproduce import aernet_table2, attnmel_table1

    for table, count in ((aernet_table2.TABLE, "2094"), (attnmel_table1.TABLE, "900")):
        stating = [note for note in table.notes if count in note]
        assert stating and all(f"the paper's {count}" in note for note in stating), stating
