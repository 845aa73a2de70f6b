"""The gallery: one card per person (a character, or a face or voice node not tied to one), a page
each with a timeline, clips and what they said; written as a static site or served live at /gallery."""
