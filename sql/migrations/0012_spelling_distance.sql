-- Spelling corrections are kept only within a few edits of the misspelt word (levenshtein), not by
-- trigram similarity alone, which pairs words that merely share a first syllable (postgres ~ postman).
-- fuzzystrmatch is a trusted extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

-- "link" says nothing of bookmarks: nearly every description has links.
UPDATE search_synonyms SET related = array_remove(related, 'link') WHERE term = 'bookmark';
-- "graph" is as often a knowledge graph or The Graph as a chart.
UPDATE search_synonyms SET related = array_remove(related, 'graph') WHERE term IN ('chart', 'plot');
