from gateway.prompt import SYSTEM_PROMPT, TEMPLATE_VERSION, render_prompt, user_message

# The training prompt from samrat-kar/llm-fine-tune (FACTS.md), written out in full so any drift fails here.
PINNED_SINGER_PROMPT = (
    "<|im_start|>system\n"
    "You are an expert SQL assistant. Given a natural language question and the relevant database schema, write a "
    "single correct SQL query that answers the question. Return only the SQL query with no explanation.<|im_end|>\n"
    "<|im_start|>user\n"
    "Given the following SQL tables:\n\n"
    "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)\n\n"
    "Write a SQL query to answer: How many singers do we have?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def test_rendered_prompt_matches_the_training_text_byte_for_byte() -> None:
    rendered = render_prompt(
        "How many singers do we have?",
        "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)",
    )
    assert rendered.encode("utf-8") == PINNED_SINGER_PROMPT.encode("utf-8")


def test_question_and_schema_are_stripped_like_the_training_code() -> None:
    padded = render_prompt("  How many singers do we have?\n", "\n CREATE TABLE singer (Singer_ID int, Name text, "
                           "Country text, Song_Name text)  \n")
    assert padded == PINNED_SINGER_PROMPT


def test_user_message_and_system_prompt_are_the_published_ones() -> None:
    assert user_message("q", "s") == "Given the following SQL tables:\n\ns\n\nWrite a SQL query to answer: q"
    assert SYSTEM_PROMPT.endswith("Return only the SQL query with no explanation.")
    assert TEMPLATE_VERSION


def test_special_tokens_of_the_prompt_are_single_qwen_tokens() -> None:
    """The ChatML markers must reach the model as Qwen's special ids, not as text pieces."""
    from gateway.limits import load_tokenizer

    ids = load_tokenizer(None).encode(PINNED_SINGER_PROMPT, add_special_tokens=False).ids
    im_start, im_end = 151644, 151645
    assert ids[0] == im_start
    assert ids.count(im_start) == 3 and ids.count(im_end) == 2
