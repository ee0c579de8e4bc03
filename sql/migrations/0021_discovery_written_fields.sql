-- What the ranked search derived from each candidate's row at every question, derived once when the row
-- is written (generated columns: every insert and update keeps them, bulk loads included):
--   name_tail            the name after its namespace ("io.github.user/"), which a misspelt word is
--                        compared with (word_similarity) and split into words for match.matched
--   capability_lexemes   the stems of the capabilities and the category, which tell a matched B lexeme
--                        from a tool name's (match.matched)
--   package_lexemes      the stems of the package identifiers' and the repository's words, which tell a
--                        matched D lexeme from a tool description's (match.matched)
-- The expressions are those discover_ranked evaluated before. array_to_string over text[] only joins
-- texts, so the function is immutable, as a generated column needs.
CREATE OR REPLACE FUNCTION search_capability_lexemes(capabilities text[], category text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tsvector_to_array(to_tsvector('english', array_to_string(capabilities, ' ') || ' ' || coalesce(category, '')))
$$;

ALTER TABLE mcp_servers
    ADD COLUMN name_tail text GENERATED ALWAYS AS (substr(name, strpos(name, '/') + 1)) STORED,
    ADD COLUMN capability_lexemes text[] GENERATED ALWAYS AS (search_capability_lexemes(capabilities, category)) STORED,
    ADD COLUMN package_lexemes text[] GENERATED ALWAYS AS (
        tsvector_to_array(to_tsvector('english'::regconfig, search_package_words(packages, repository)))) STORED;
