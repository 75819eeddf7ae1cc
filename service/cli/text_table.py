"""Plain-text tables for the terminal commands: columns padded to their widest cell."""


def text_table(rows: list) -> str:
    """Render rows (the first is the header) as aligned columns, one line each."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n" for row in cells
    )
