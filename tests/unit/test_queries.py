from semsearch.query.bodies import keyword_body, knn_body, msearch_body


def test_user_text_is_match_text_not_query_syntax():
    text = 'title:x OR *:* "quoted" \\ {"json": 1}'
    body = keyword_body(text, ["title", "text"], 10)
    match = body["query"]["bool"]["must"][0]["multi_match"]
    assert match["query"] == text
    assert "query_string" not in str(body)


def test_filters_on_both_sides():
    flt = {"term": {"lang": "en"}}
    kw = keyword_body("q", ["text"], 5, flt, source_excludes=["embedding"])
    assert kw["query"]["bool"]["filter"] == [flt]
    assert kw["_source"] == {"excludes": ["embedding"]}
    knn = knn_body([0.5, 0.25], "embedding", 7, [flt])
    assert knn["query"]["knn"]["embedding"] == {"vector": [0.5, 0.25], "k": 7,
                                                "filter": {"bool": {"filter": [flt]}}}
    assert knn["size"] == 7


def test_msearch_pairs():
    lines = msearch_body("idx", [{"a": 1}, {"b": 2}])
    assert lines == [{"index": "idx"}, {"a": 1}, {"index": "idx"}, {"b": 2}]


def test_one_source_field_as_a_string_is_one_field():
    body = keyword_body("q", ["text"], 5, source="title", source_excludes=["embedding"])
    assert body["_source"] == {"includes": ["title"], "excludes": ["embedding"]}
