"""The composer's builder state: posted field paths to the content document and back, operations,
crontab checks and summaries."""

from campaigns.forms import content_builder as builder
from campaigns.forms.recurrence import crontab_problem, crontab_summary


def test_state_round_trip_through_document():
    data = {
        "kind": "card",
        "card.title": "タイトル",
        "card.buttons[0].type": "reply",
        "card.buttons[0].label": "はい",
        "chips[0].type": "open_url",
        "chips[0].label": "開く",
        "chips[0].url": "https://example.jp/",
        "text": "ignored because the kind is card",
    }
    state = builder.state_from_post(data)
    document = builder.document_from_state(state)
    assert document == {
        "card": {"title": "タイトル", "buttons": [{"type": "reply", "label": "はい", "postback": "はい"}]},
        "chips": [{"type": "open_url", "label": "開く", "url": "https://example.jp/"}],
    }
    back = builder.state_from_document(document)
    assert back["kind"] == "card" and back["card"]["title"] == "タイトル"
    assert builder.content_errors(document) == {}


def test_crafted_indexes_do_not_build_huge_lists():
    state = builder.state_from_post({"kind": "carousel", "carousel.cards[999999].title": "x",
                                "__proto__.x": "y", "carousel.cards[1].title": "B"})
    assert len(state["carousel"]["cards"]) == 2


def test_operations_respect_limits():
    state = builder.empty_state()
    for _ in range(12):
        builder.apply_operation(state, "add_card")
    assert len(state["carousel"]["cards"]) == 10
    for _ in range(6):
        builder.apply_operation(state, "add_button:card")
    assert len(state["card"]["buttons"]) == 4
    for _ in range(13):
        builder.apply_operation(state, "add_chip")
    assert len(state["chips"]) == 11
    state["carousel"]["cards"][0]["title"] = "first"
    builder.apply_operation(state, "move_card:0:right")
    assert state["carousel"]["cards"][1]["title"] == "first"
    builder.apply_operation(state, "remove_card:1")
    assert all(card["title"] != "first" for card in state["carousel"]["cards"])
    builder.apply_operation(state, "remove_button:card:0")
    assert len(state["card"]["buttons"]) == 3
    builder.apply_operation(state, "nonsense:99")


def test_crontab_checks_and_summary():
    assert crontab_problem("0 10 * * 1") is None
    assert crontab_problem("0 25 * * *")
    assert crontab_problem("0 10 * *")
    assert crontab_problem("* 10 * * *")
    # A crontab with words reads as its words (campaigns.recurrence); another gets cron-descriptor's.
    assert crontab_summary("0 10 * * 1") == "Every Monday at 10:00"
    assert crontab_summary("30 9 * * *") == "Every day at 09:30"
    assert crontab_summary("0 12 1 * *") == "Every month on day 1 at 12:00"
    assert crontab_summary("0 9 * * 1-5") == "Every weekday (Monday to Friday) at 09:00"
    assert crontab_summary("0 9,18 * * *") == "At 09:00 and 18:00"


def test_a_saved_carousel_survives_the_editor_round_trip():
    document = {
        "chips": [{"type": "reply", "label": "興味あり", "postback": "coupon:interested"}],
        "carousel": {"width": "MEDIUM", "cards": [
            {"media": {"url": "https://shop.example.jp/img/coupon.jpg", "height": "MEDIUM"},
             "title": "{{name}}様限定 20%OFFクーポン",
             "buttons": [{"url": "https://shop.example.jp/coupon", "type": "open_url", "label": "クーポンを使う"}],
             "description": "配信停止は「停止」と返信してください。"},
            {"title": "新商品のご案内", "description": "秋の新作",
             "buttons": [{"type": "location", "label": "店舗", "latitude": 35.5, "longitude": 139.25},
                         {"type": "calendar", "label": "予定", "title": "セール", "start": "2030-01-10T10:00:00+09:00",
                          "end": "2030-01-10T20:00:00+09:00"}]},
        ]},
    }
    state = builder.state_from_document(document)
    posted = {}

    def flatten(prefix, node):
        if isinstance(node, dict):
            for key, value in node.items():
                flatten(f"{prefix}.{key}" if prefix else key, value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                flatten(f"{prefix}[{index}]", value)
        else:
            posted[prefix] = node

    flatten("", {k: v for k, v in state.items() if k in ("carousel", "chips")})
    posted["kind"] = state["kind"]
    assert builder.document_from_state(builder.state_from_post(posted)) == document


def test_crontab_summary_lists_several_days():
    assert crontab_summary("0 22 * * 1,3") == "Every Monday, Wednesday at 22:00"
