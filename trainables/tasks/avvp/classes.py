"""The 25 LLP event classes, in the order the official AVVP code and its predictions use.

Arrays shaped (..., 25) anywhere in avtune follow this order, so predictions exported by the
official HAN/JoMoLD code can be scored directly.
"""

LLP_CLASSES: tuple[str, ...] = (
    "Speech", "Car", "Cheering", "Dog", "Cat", "Frying_(food)",
    "Basketball_bounce", "Fire_alarm", "Chainsaw", "Cello", "Banjo",
    "Singing", "Chicken_rooster", "Violin_fiddle", "Vacuum_cleaner",
    "Baby_laughter", "Accordion", "Lawn_mower", "Motorcycle", "Helicopter",
    "Acoustic_guitar", "Telephone_bell_ringing", "Baby_cry_infant_cry", "Blender",
    "Clapping",
)
NUM_CLASSES = len(LLP_CLASSES)
NUM_SEGMENTS = 10
CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(LLP_CLASSES)}
