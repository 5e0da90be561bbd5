"""Write the small datasets of the built-in suites (deterministic; run from anywhere).

The data is synthetic and written for this project: template-built product reviews, factual
multiple-choice questions, short chat threads with summaries, and simple English->German sentences.
Re-running this script rewrites the same files byte for byte.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

PRODUCTS = ["blender", "headphones", "backpack", "lamp", "kettle", "phone case", "desk chair", "keyboard",
            "water bottle", "rain jacket", "coffee grinder", "monitor", "toaster", "tent", "novel", "camera"]
GOOD = ["works perfectly", "exceeded my expectations", "is sturdy and well made", "arrived quickly and works great",
        "is worth every penny", "feels premium", "is a joy to use", "does exactly what it promises",
        "has held up beautifully", "is the best purchase I made this year"]
BAD = ["broke after two days", "is a waste of money", "stopped working within a week", "feels cheap and flimsy",
       "was a huge disappointment", "never worked properly", "arrived damaged", "is far too noisy to use",
       "fell apart quickly", "is not worth the price"]
GOOD_TAIL = ["I would buy it again.", "Highly recommended.", "Five stars.", "My whole family loves it.", ""]
BAD_TAIL = ["I am returning it.", "Avoid this one.", "One star.", "Customer service did not help.", ""]


def sentiment_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        label = rng.randrange(2)
        product = rng.choice(PRODUCTS)
        body, tail = (rng.choice(GOOD), rng.choice(GOOD_TAIL)) if label else (rng.choice(BAD), rng.choice(BAD_TAIL))
        if rng.random() < 0.25:  # harder: a contrastive clause
            other = rng.choice(BAD if label else GOOD)
            text = f"The {product} {other.replace('is ', 'seemed ', 1)} at first, but overall it {body}. {tail}"
        else:
            text = f"This {product} {body}. {tail}"
        rows.append({"text": text.strip(), "label": "positive" if label else "negative"})
    return rows


CAPITALS = {"France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
            "Canada": "Ottawa", "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo",
            "Poland": "Warsaw", "Greece": "Athens", "Chile": "Santiago", "Cuba": "Havana", "Ireland": "Dublin",
            "Austria": "Vienna", "Portugal": "Lisbon", "Sweden": "Stockholm", "Thailand": "Bangkok",
            "Turkey": "Ankara", "Australia": "Canberra", "Mexico": "Mexico City", "China": "Beijing"}
ANIMALS = {"mammal": ["dog", "whale", "bat", "horse", "elephant", "mouse"],
           "bird": ["eagle", "penguin", "sparrow", "owl", "parrot", "duck"],
           "fish": ["salmon", "shark", "tuna", "trout", "cod", "goldfish"],
           "reptile": ["lizard", "snake", "turtle", "crocodile", "gecko", "iguana"]}
OPPOSITES = {"hot": "cold", "tall": "short", "fast": "slow", "heavy": "light", "early": "late", "happy": "sad",
             "open": "closed", "wet": "dry", "loud": "quiet", "full": "empty", "strong": "weak", "rich": "poor"}


def _mc(question: str, answer: str, wrong: list[str], rng: random.Random) -> dict:
    choices = [answer, *rng.sample(wrong, 3)]
    rng.shuffle(choices)
    return {"question": question, "choices": choices, "answer": choices.index(answer)}


def mcqa_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            country = rng.choice(list(CAPITALS))
            wrong = [c for k, c in CAPITALS.items() if k != country]
            rows.append(_mc(f"What is the capital of {country}?", CAPITALS[country], wrong, rng))
        elif kind == 1:
            group = rng.choice(list(ANIMALS))
            animal = rng.choice(ANIMALS[group])
            rows.append(_mc(f"What kind of animal is a {animal}?", f"a {group}",
                            [f"a {g}" for g in ANIMALS if g != group] + ["a plant"], rng))
        elif kind == 2:
            a, b = rng.randrange(2, 50), rng.randrange(2, 50)
            wrong = sorted({a + b + d for d in (-10, -2, -1, 1, 2, 10) if a + b + d > 0})
            rows.append(_mc(f"What is {a} plus {b}?", str(a + b), [str(w) for w in wrong], rng))
        else:
            word = rng.choice(list(OPPOSITES))
            wrong = [w for w in OPPOSITES.values() if w != OPPOSITES[word]]
            rows.append(_mc(f"What is the opposite of '{word}'?", OPPOSITES[word], wrong, rng))
    return rows


NAMES = ["Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Leo"]
EVENTS = [("the team meeting", "meeting"), ("dinner", "dinner"), ("the dentist appointment", "appointment"),
          ("the football match", "match"), ("the book club", "book club"), ("the flight", "flight")]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIMES = ["9am", "10am", "noon", "2pm", "3pm", "5pm", "7pm", "8pm"]


def summary_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        a, b = rng.sample(NAMES, 2)
        event, short = rng.choice(EVENTS)
        old_day, new_day = rng.sample(DAYS, 2)
        time = rng.choice(TIMES)
        style = rng.randrange(3)
        if style == 0:
            dialogue = (f"{a}: Hi {b}, can we move {event} from {old_day} to {new_day}?\n"
                        f"{b}: Sure, what time?\n{a}: {time} would be perfect.\n{b}: OK, see you then.")
            summary = f"{a} and {b} move the {short} from {old_day} to {new_day} at {time}."
        elif style == 1:
            dialogue = (f"{a}: Are you coming to {event} on {new_day}?\n{b}: I can't, I'm ill.\n"
                        f"{a}: Sorry to hear that. Get well soon!")
            summary = f"{b} is ill and will not come to the {short} on {new_day}."
        else:
            item, pronoun = rng.choice([("the tickets", "them"), ("the keys", "them"), ("the charger", "it"),
                                        ("the umbrella", "it"), ("the map", "it")])
            dialogue = (f"{a}: Did you bring {item} for {event}?\n{b}: Oh no, I forgot {pronoun} at home.\n"
                        f"{a}: Can you get {pronoun} before {time}?\n{b}: Yes, I'll go back now.")
            summary = f"{b} forgot {item} and will fetch {pronoun} before {time}."
        rows.append({"dialogue": dialogue, "summary": summary})
    return rows


SUBJECTS = [("the dog", "der Hund", "m"), ("the cat", "die Katze", "f"), ("the child", "das Kind", "n"),
            ("the man", "der Mann", "m"), ("the woman", "die Frau", "f"), ("the car", "das Auto", "n"),
            ("the house", "das Haus", "n"), ("the teacher", "die Lehrerin", "f"), ("the bird", "der Vogel", "m")]
ADJECTIVES = [("big", "groß"), ("small", "klein"), ("old", "alt"), ("new", "neu"), ("fast", "schnell"),
              ("tired", "müde"), ("happy", "glücklich"), ("red", "rot"), ("quiet", "leise")]
PLACES = [("in the garden", "im Garten"), ("at home", "zu Hause"), ("in the city", "in der Stadt"),
          ("at school", "in der Schule"), ("in the park", "im Park")]
VERBS = [("sleeps", "schläft"), ("plays", "spielt"), ("waits", "wartet"), ("works", "arbeitet")]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def translation_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        (en_s, de_s, _), (en_a, de_a) = rng.choice(SUBJECTS), rng.choice(ADJECTIVES)
        en_p, de_p = rng.choice(PLACES)
        if rng.random() < 0.5:
            en, de = f"{_cap(en_s)} is {en_a}.", f"{_cap(de_s)} ist {de_a}."
        else:
            en_v, de_v = rng.choice(VERBS)
            en, de = f"{_cap(en_s)} {en_v} {en_p}.", f"{_cap(de_s)} {de_v} {de_p}."
        rows.append({"english": en, "german": de})
    return rows


def write(name: str, rows: list[dict]) -> None:
    with open(HERE / name, "w", encoding="utf-8") as handle:
        for i, row in enumerate(rows):
            handle.write(json.dumps({"id": f"{name.split('.')[0]}-{i}", **row}, ensure_ascii=False) + "\n")


def main() -> None:
    makers = {"sentiment": (sentiment_rows, 400), "mcqa": (mcqa_rows, 300), "summarise": (summary_rows, 300),
              "translate": (translation_rows, 400)}
    for seed, (name, (make, n_train)) in enumerate(makers.items()):
        rng = random.Random(1000 + seed)
        write(f"{name}_train.jsonl", make(rng, n_train))
        write(f"{name}_validation.jsonl", make(rng, 60))
        write(f"{name}_test.jsonl", make(rng, 200))


if __name__ == "__main__":
    main()
