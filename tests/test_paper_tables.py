"""The papers' own numbers as the table scripts transcribe them: what the notes say of
them must follow from the values, not be typed beside them."""
from reproduce import sanet_table4


def test_sanet_table4_notes_name_exactly_the_papers_inconsistent_macro_averages():
    """Issue 15: SANet's macro Dice 50.2 vs 50.04, ResNet151's macro Jaccard 24.5 vs 24.98."""
    notes = sanet_table4.macro_inconsistencies(sanet_table4.PAPER_ROWS)
    assert len(notes) == 2
    assert "ResNet151's macro Jaccard is printed as 24.5, but the mean of its five attribute values is 24.98" in notes[0]
    assert "SANet's macro Dice is printed as 50.2, but the mean of its five attribute values is 50.04" in notes[1]
    assert set(notes) <= set(sanet_table4.TABLE.notes)
