-- Discovery: ranked full-text search with related terms and spelling corrections, filters, keyset pages.

-- _listed_filters --
-- What every discovery query keeps: listed servers (or pending ones when asked), then the caller's filters
       AND (mcp_server_listed(s) OR (%(include_pending)s AND s.status = 'pending'))
       AND (%(domain)s::text IS NULL OR s.domain = %(domain)s OR reverse(s.domain) LIKE %(domain_reversed)s)
       AND (%(caps_all)s::text[] IS NULL OR s.capabilities @> %(caps_all)s::text[])
       AND (%(caps_any)s::text[] IS NULL OR s.capabilities && %(caps_any)s::text[])
       AND (%(caps_exclude)s::text[] IS NULL OR NOT s.capabilities && %(caps_exclude)s::text[])
       AND (%(category)s::text IS NULL OR s.category = %(category)s)
       AND (%(transport)s::text IS NULL OR s.transports @> ARRAY[%(transport)s::text])
       AND (%(auth_type)s::text IS NULL OR s.auth_type = %(auth_type)s)
       AND (NOT %(verified_only)s OR s.verified)
       AND (NOT %(healthy_only)s OR s.health_status = 'healthy')
       AND (%(min_trust_score)s::int IS NULL OR s.trust_score >= %(min_trust_score)s)


-- browse_by_trust --
-- Filtered listing without query text, one keyset page: Trust order, highest first (also relevance order when there is no query text)
SELECT
       -- include _server_columns
       0.0::float8 AS relevance, s.trust_score::text AS sort_key
  FROM mcp_servers s
 WHERE (%(after_name)s::text IS NULL OR (s.trust_score <= %(after_int)s AND (s.trust_score < %(after_int)s OR s.name > %(after_name)s)))
       -- include _listed_filters
 ORDER BY s.trust_score DESC, s.name
 LIMIT %(limit)s;

-- browse_by_latency --
-- Filtered listing without query text, one keyset page: Fastest measured servers first; never-measured ones last
SELECT
       -- include _server_columns
       0.0::float8 AS relevance, coalesce(s.avg_response_time_ms, 'Infinity'::real)::text AS sort_key
  FROM mcp_servers s
 WHERE (%(after_name)s::text IS NULL OR (coalesce(s.avg_response_time_ms, 'Infinity'::real) >= %(after_real)s::real AND (coalesce(s.avg_response_time_ms, 'Infinity'::real) > %(after_real)s::real OR s.name > %(after_name)s)))
       -- include _listed_filters
 ORDER BY coalesce(s.avg_response_time_ms, 'Infinity'::real), s.name
 LIMIT %(limit)s;

-- browse_by_newest --
-- Filtered listing without query text, one keyset page: Most recently listed first
SELECT
       -- include _server_columns
       0.0::float8 AS relevance, to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS sort_key
  FROM mcp_servers s
 WHERE (%(after_name)s::text IS NULL OR (s.created_at <= %(after_ts)s::timestamptz AND (s.created_at < %(after_ts)s::timestamptz OR s.name > %(after_name)s)))
       -- include _listed_filters
 ORDER BY s.created_at DESC, s.name
 LIMIT %(limit)s;

-- browse_by_name --
-- Filtered listing without query text, one keyset page: Alphabetical by registry name
SELECT
       -- include _server_columns
       0.0::float8 AS relevance, '' AS sort_key
  FROM mcp_servers s
 WHERE (%(after_name)s::text IS NULL OR s.name > %(after_name)s)
       -- include _listed_filters
 ORDER BY s.name
 LIMIT %(limit)s;

-- count_listing --
-- How many servers a listing without query text returns across its pages, counted up to a cap
SELECT count(*) AS total
  FROM (SELECT 1
          FROM mcp_servers s
         WHERE true
       -- include _listed_filters
         LIMIT %(count_cap)s) AS listed;

-- discover_ranked --
-- Text search: a bounded candidate pool from the indexes, then the full relevance and quality blend
WITH words AS (
    -- Filler: stemmed words that say nothing about which server fits ("I need an MCP server to help me").
    SELECT x.w,
           x.w = ANY ('{mcp,server,model,context,protocol,tool,need,want,use,help,find,let,like,abl,way,
                        someth,thing,app,applic,integr,servic,pleas,could,would,via,ai,agent,llm,claud,
                        allow,enabl,provid,interact,support,implement,access,connect,manag,work,make,get,
                        i,can,show,look,good,best}'::text[]) AS filler,
           -- Actions: the verb of a question ("accept payments", "deploy my app to heroku") says what
           -- to do, the rest what with; every server of a kind does several, and descriptions word them
           -- freely. They rank, but weigh little in match.strength and are never its key term.
           x.w = ANY ('{take,accept,save,play,click,run,send,post,read,write,edit,creat,build,track,convert,
                        deploy,learn,order,studi,add,updat,delet,list,open,check,start,stop,control,autom,
                        generat,upload,download,publish,monitor,queri,analyz,talk,call,fetch,keep,give,put,
                        set,view,watch,share}'::text[]) AS action
      FROM (SELECT replace(w, E'\\', '') AS w
              FROM unnest(tsvector_to_array(to_tsvector('english', %(query)s::text))) AS w) AS x
     WHERE x.w <> ''
), said AS (
    -- Each stem of the question and the word it was typed as (lowercased), so that an answer shows a
    -- person's own words, never stems: the shortest token yielding it ("e-mail" yields e-mail, e and
    -- mail; "mail" typed alone is "mail").
    SELECT DISTINCT ON (x.w) x.w, lower(p.token) AS typed
      FROM ts_parse('default', %(query)s::text) WITH ORDINALITY AS p (tokid, token, n),
           LATERAL (SELECT replace(w, E'\\', '') AS w
                      FROM unnest(tsvector_to_array(to_tsvector('english', p.token))) AS w) AS x
     ORDER BY x.w, length(p.token), p.n
), kept AS (
    -- Filler never decides a match, unless it is all there is.
    SELECT w, action FROM words WHERE NOT filler
    UNION ALL
    SELECT w, action FROM words WHERE NOT EXISTS (SELECT 1 FROM words WHERE NOT filler)
), typed_words AS (
    -- The query's words as typed (lowercased, four letters or more), for prefix completion.
    SELECT r.word
      FROM unnest(%(typed_words)s::text[]) AS r (word)
     WHERE length(r.word) >= 4
), completions AS (
    -- A word servers hold as typed is a whole word and completes nothing ("home" is no prefix of
    -- homeassistant, "need" of needle). Otherwise a stored word completes a typed one when it begins
    -- with the word as typed and either the typed word is most of it (postgres -> postgresql,
    -- markdown -> markdownify: 70 percent of its length or more) or it is the question's last word, still
    -- being typed (kube -> kubernetes). Never a shared first syllable of two words: "lights" is no
    -- prefix of lightdash.
    SELECT DISTINCT r.word AS typed_word, replace(v.word, E'\\', '') AS word
      FROM typed_words r,
           LATERAL (SELECT replace((tsvector_to_array(to_tsvector('english', r.word)))[1], E'\\', '') AS stem) AS st,
           LATERAL (SELECT v.word FROM search_lexicon v
                     WHERE v.word > r.word AND v.word < r.word || chr(1114111)
                       AND (length(r.word) >= 0.7 * length(v.word) OR r.word = %(open_word)s::text)
                     ORDER BY length(v.word), v.word
                     LIMIT %(prefix_expansions)s) AS v
     -- A stop word ("with", "from") has no stem: it is no term, and nothing completes it.
     WHERE st.stem <> ''
       AND NOT EXISTS (SELECT 1 FROM search_postings sp WHERE sp.lexeme = st.stem)
), misspelt AS (
    -- Words no listed server holds as typed, and that no stored word completes, may be misspelt.
    SELECT fw, stem
      FROM (SELECT fw, replace((tsvector_to_array(to_tsvector('english', fw)))[1], E'\\', '') AS stem
              FROM unnest(%(fuzzy)s::text[]) AS fw) AS w
     WHERE stem <> ''
       -- The postings' btree: an equality on the lexicon is answered from its slower trigram index.
       AND NOT EXISTS (SELECT 1 FROM search_postings sp WHERE sp.lexeme = w.stem)
       AND NOT EXISTS (SELECT 1 FROM completions c WHERE c.typed_word = w.fw)
), corrections AS (
    -- A correction is a stored word within one edit per four letters of the misspelt stem (kubernetse
    -- -> kubernet; two edits from eight letters), with the same first letter, and only for stems of five
    -- letters or more: shorter ones have too many neighbours one edit away (pari -> part). Only the
    -- nearest: a word one edit away says more than one two edits away.
    SELECT x.stem, x.word
      FROM (SELECT m.stem, c.word, rank() OVER (PARTITION BY m.stem ORDER BY c.edits) AS nearness
              FROM misspelt m,
                   LATERAL (SELECT v.word, levenshtein(v.word, m.stem) AS edits
                              FROM search_lexicon v
                             WHERE length(m.stem) >= 5
                               AND v.word %% m.stem
                               AND left(v.word, 1) = left(m.stem, 1)
                             ORDER BY similarity(v.word, m.stem) DESC, v.word
                             LIMIT 8) AS c
             WHERE c.edits <= length(m.stem) / 4) AS x
     WHERE x.nearness = 1
), terms AS (
    -- Each kept word as a term: the tsqueries that test how a server holds it (as typed, completed,
    -- related; anywhere or in a strong field), the words to look it up by, and its weight.
    SELECT k.w,
           quote_literal(k.w)::tsquery AS as_typed,
           (quote_literal(k.w) || ':AB')::tsquery AS as_typed_strong,
           (SELECT string_agg(quote_literal(x), ' | ') FROM unnest(cw.words) AS x)::tsquery AS completed,
           (SELECT string_agg(quote_literal(x) || ':AB', ' | ') FROM unnest(cw.words) AS x)::tsquery
               AS completed_strong,
           k.w || coalesce(cw.words, '{}') AS lookup_words,
           rw.words AS related_words,
           rw.query AS related,
           rw.query_strong AS related_strong,
           -- Rarer words say more about which server fits: a term's weight is 1 / (1 + the listed
           -- servers holding it, counted up to 101: past 100 a word is common), so "telegram" outweighs
           -- "message". A word nothing can match (no server holds it, and it has no completion or
           -- related word) weighs as much as one three servers hold: it may name what is asked
           -- ("postgres" in a registry without one) or be a word no description happens to use
           -- ("prices"). An action weighs 0.05. A distinctive word (held by at most 0.01 percent of the
           -- servers, at least two and at most 100) in a server's name, capabilities or tool names names
           -- what the server is about ("grafana" in mcp-grafana).
           NOT k.action AND m.matchable AS holdable,
           CASE WHEN k.action THEN 0.05 WHEN m.matchable THEN 1.0 / (1 + df.n) ELSE 0.25 END AS weight,
           df.n BETWEEN 1 AND least(greatest(2, (SELECT reltuples FROM pg_class WHERE oid = 'mcp_servers'::regclass) / 10000), 100)
               AS distinctive,
           (SELECT string_agg(quote_literal(x), ' | ') FROM unnest(k.w || coalesce(cw.words, '{}')) AS x)::tsquery
               AS lookup,
           -- The every-term branch looks up the word alone when listed servers hold it as typed (see
           -- all_hits).
           CASE WHEN df.n > 0 THEN quote_literal(k.w)::tsquery END AS typed
      FROM kept k
      -- Completions of the typed word this term was stemmed from, each an exact lookup: a GIN prefix
      -- lookup (`kube:*`) merges every matching posting list into a bitmap first, on 1M rows most of
      -- a search's time.
      CROSS JOIN LATERAL (
          SELECT array_agg(DISTINCT c.word) AS words
            FROM completions c
           WHERE c.typed_word ^@ k.w AND c.word <> k.w) AS cw
      CROSS JOIN LATERAL (
          -- Only the listings' own words count (strength 1 and up): text at weight D (tool descriptions,
          -- README and package text) finds and ranks a server but never makes a word rare. Counted with
          -- it, one README's "prices" made an Airbnb server the answer to "stock prices and market data"
          -- (bench/readme_quality.py).
          SELECT count(*) AS n
            FROM (SELECT 1 FROM search_postings sp WHERE sp.lexeme = k.w AND sp.strength > 0 LIMIT 101) AS held
      ) AS df
      -- Related words: synonyms (a phrase matches only whole: "home assistant" is home & assist) and
      -- spelling corrections.
      CROSS JOIN LATERAL (
          SELECT array_agg(DISTINCT l.x) AS words,
                 string_agg(DISTINCT '(' || ph.query || ')', ' | ')::tsquery AS query,
                 string_agg(DISTINCT '(' || ph.query_strong || ')', ' | ')::tsquery AS query_strong
            FROM (SELECT (SELECT string_agg(quote_literal(x), ' & ') FROM unnest(p.lexemes) AS x) AS query,
                         (SELECT string_agg(quote_literal(x) || ':AB', ' & ') FROM unnest(p.lexemes) AS x)
                             AS query_strong,
                         p.lexemes
                    FROM search_synonyms syn,
                         unnest(syn.related) AS phrase,
                         LATERAL (SELECT array_agg(replace(x, E'\\', '')) FILTER (WHERE replace(x, E'\\', '') <> '')
                                         AS lexemes
                                    FROM unnest(tsvector_to_array(to_tsvector('english', phrase))) AS x) AS p
                   WHERE syn.term = k.w AND p.lexemes IS NOT NULL
                  UNION ALL
                  SELECT quote_literal(c.word), quote_literal(c.word) || ':AB', ARRAY[c.word]
                    FROM corrections c
                   WHERE c.stem = k.w) AS ph,
                 unnest(ph.lexemes) AS l (x)) AS rw
      -- Whether any server can hold the term at all: as typed, completed or through a related word.
      CROSS JOIN LATERAL (SELECT df.n > 0 OR cw.words IS NOT NULL OR rw.words IS NOT NULL AS matchable) AS m
     LIMIT 16
), q AS (
    -- The question as a whole: every term (for the every-term pool), any term or related word (for the
    -- any-term pool and ts_rank), each term's share of the pool, and the key terms' weight.
    SELECT (SELECT string_agg('(' || coalesce(typed, lookup)::text || ')', ' & ')::tsquery FROM terms) AS tsq_all,
           (SELECT string_agg('(' || lookup::text || ')' || coalesce(' | (' || related::text || ')', ''), ' | ')::tsquery
              FROM terms) AS tsq_any,
           (SELECT ceil(%(pool)s::numeric / greatest(count(*), 1))::int FROM terms) AS term_share,
           (SELECT count(*) FROM terms) AS term_count,
           -- The key terms: those a server can hold weighing at least half the heaviest such term.
           (SELECT 0.5 * max(weight) FROM terms WHERE holdable) AS key_weight,
           NOT EXISTS (SELECT 1 FROM words WHERE NOT filler) AS filler_only,
           -- The stored lexemes that count as matched (for match.matched)
           (SELECT array_agg(DISTINCT x) FROM terms t, unnest(t.lookup_words || coalesce(t.related_words, '{}')) AS x)
               AS match_words,
           -- Each of those lexemes with the term it counts for and that term's word as typed: [lexeme,
           -- term, word] (match.words, match.matched_words).
           (SELECT array_agg(DISTINCT ARRAY[x, t.w, coalesce(sd.typed, t.w)])
              FROM terms t
              LEFT JOIN said sd ON sd.w = t.w
             CROSS JOIN LATERAL unnest(t.lookup_words || coalesce(t.related_words, '{}')) AS x) AS lexeme_words
), all_hits AS MATERIALIZED (
    -- The candidate pool: rows holding every term, and rows holding any term or a related one
    -- (synonyms and spelling corrections). Each is an index scan capped below, so ranking work does
    -- not grow with the number of matches. MATERIALIZED: planned for all its rows (a bitmap index scan) yet read lazily, so the
    -- cap stops the heap fetches; a plain capped subquery tempts the planner into a sequential scan.
    -- Each term is its word as typed when documents hold it, not the word with its prefix expansions:
    -- with a dozen words per term GIN reads every posting list whole and tests the query on each row
    -- ("run python code in a sandbox": 4.2 ms on 1M servers), with one word per term it reads about
    -- the rarest list. Rows holding only an expansion still come from the any-term branches. Without
    -- filters a single term skips this branch: its strongest holders come from search_postings, where
    -- this scan would have read every row holding the word (1.4 ms instead of 3.2 ms for "kubernets").
    -- So does a question of filler words alone ("mcp server"), which nearly every server holds: 7.9 ms
    -- on 100k servers through this branch, 1.0 ms from the postings.
    SELECT s.id
      FROM mcp_servers s
     WHERE (%(filtered)s OR ((SELECT term_count FROM q) > 1 AND NOT (SELECT filler_only FROM q)))
       AND s.search_vector @@ (SELECT tsq_all FROM q)
       -- include _listed_filters
), posting_hits AS MATERIALIZED (
    -- Without filters, rows holding any term or a related word come from search_postings: each term
    -- gets an equal share of the pool, filled with its words' strongest holders (name or title first,
    -- then capabilities and tool names, then descriptions), one short btree range per word. So the
    -- pool costs the same however many servers hold a common word. Only listed servers have postings.
    SELECT DISTINCT h.server_id AS id
      FROM terms t
      CROSS JOIN LATERAL (
          SELECT p.server_id
            FROM unnest(t.lookup_words || coalesce(t.related_words, '{}')) AS l (lexeme),
                 LATERAL (SELECT sp.server_id, sp.strength
                            FROM search_postings sp
                           WHERE sp.lexeme = l.lexeme
                           ORDER BY sp.strength DESC, sp.server_id DESC
                           LIMIT (SELECT term_share FROM q)) AS p
           ORDER BY p.strength DESC, p.server_id DESC
           LIMIT (SELECT term_share FROM q)) AS h
     WHERE NOT %(filtered)s
), any_hits AS MATERIALIZED (
    -- With filters, the GIN index, which applies them as it reads (the postings know none of them).
    SELECT s.id
      FROM mcp_servers s
     WHERE %(filtered)s
       AND s.search_vector @@ (SELECT tsq_any FROM q)
       -- include _listed_filters
), room AS (
    -- Any-term rows only top the pool up: when every-term rows fill it, neither branch is read at all.
    SELECT greatest(%(pool)s - count(*), 0) AS left_over FROM (SELECT 1 FROM all_hits LIMIT %(pool)s) AS filled
), cand AS (
    -- The candidates: the every-term rows, topped up from whichever any-term branch ran.
    (SELECT id FROM all_hits LIMIT %(pool)s)
    UNION
    (SELECT id FROM posting_hits LIMIT (SELECT left_over FROM room))
    UNION
    (SELECT id FROM any_hits LIMIT (SELECT left_over FROM room))
    UNION
    -- The nearest servers by meaning (fused search: services/semantic.py found them), as close as the
    -- floor or closer, and only those the filters keep.
    (SELECT s.id
       FROM unnest(%(sem_ids)s::uuid[], %(sem_sims)s::float8[]) AS n (id, similarity)
       JOIN mcp_servers s ON s.id = n.id
      WHERE n.similarity >= %(sem_floor)s
       -- include _listed_filters
    )
), ranked AS MATERIALIZED (
    -- Each candidate's evidence, strength and score (docs/discovery.md has the formula), computed once
    -- for the window, the sort key and the page that read it. Only what ordering needs: the answer's
    -- columns are read for the page's rows alone (the last step), not carried through every window.
    SELECT s.id, s.name, s.trust_score, s.avg_response_time_ms, s.created_at,
           ev.terms AS term_evidence, ev.strength AS lex_strength, ev.term_score > 0 AS lex_held,
           ev.max_held, ev.typed_confident, sem.similarity, sem.ord AS sem_rank,
           -- The most this server's similarity to the question can be: its own when it is among the
           -- nearest, else at most the last of those (sem_bound); null when it has no vector yet.
           CASE WHEN sem.similarity IS NOT NULL THEN sem.similarity
                WHEN EXISTS (SELECT 1 FROM server_embeddings e WHERE e.server_id = s.id AND e.model = %(sem_model)s)
                    THEN %(sem_bound)s::float8 END AS sem_upper,
           rel.relevance * (0.8 + 0.2 * (0.4 * s.verified::int
            + 0.3 * CASE s.health_status WHEN 'healthy' THEN 1 WHEN 'degraded' THEN 0.6
                    WHEN 'auth_required' THEN 0.6 WHEN 'unknown' THEN 0.3 ELSE 0 END
            + 0.3 * s.trust_score / 100.0)) AS score
      FROM cand c
      JOIN mcp_servers s ON s.id = c.id
      CROSS JOIN q
      -- How this server holds each term: 6 as typed in its name, title, capabilities, category or tool
      -- names; 5 as typed elsewhere; 4 and 3 the same for a completion of a typed prefix; 2 and 1 for a
      -- related word (synonym or spelling correction); 0 not at all.
      CROSS JOIN LATERAL (
          -- exact: every term as typed, one of them in a strong field. partial: a key term held and at
          -- least half the question's weight covered, or a distinctive key term as typed in a strong
          -- field, or three quarters of the weight covered. weak: less, a guess.
          SELECT a.terms, a.term_score, a.max_held,
                 -- Whether the words as typed alone make it partial or better: if not, its strength rests
                 -- on completed prefixes or related words, which the fused ranking checks by meaning.
                 (a.typed_key_held AND a.typed_coverage >= 0.5) OR a.distinctive_named OR a.typed_coverage >= 0.75
                     AS typed_confident,
                 CASE WHEN a.every_typed AND a.one_named THEN 'exact'
                      WHEN (a.key_held AND a.coverage >= 0.5) OR a.distinctive_named OR a.coverage >= 0.75
                          THEN 'partial'
                      ELSE 'weak' END AS strength
            FROM (
                SELECT array_agg(e.held || ':' || e.w ORDER BY e.w) AS terms,
                       sum(e.weight * CASE e.held WHEN 6 THEN 1.0 WHEN 5 THEN 0.75 WHEN 4 THEN 0.9 WHEN 3 THEN 0.65
                                                  WHEN 2 THEN 0.6 WHEN 1 THEN 0.5 ELSE 0 END) / sum(e.weight)
                           AS term_score,
                       -- The share of the question's weight held (a related word counts 3/4).
                       sum(e.weight * CASE WHEN e.held >= 3 THEN 1.0 WHEN e.held >= 1 THEN 0.75 ELSE 0 END)
                           / sum(e.weight) AS coverage,
                       sum(e.weight * CASE WHEN e.held >= 5 THEN 1.0 ELSE 0 END) / sum(e.weight) AS typed_coverage,
                       bool_or(e.held >= 5 AND e.key) AS typed_key_held,
                       min(e.held) >= 5 AS every_typed,
                       max(e.held) AS max_held,
                       max(e.held) = 6 AS one_named,
                       bool_or(e.held > 0 AND e.key) AS key_held,
                       bool_or(e.distinctive AND e.key AND e.held = 6) AS distinctive_named
                  FROM (SELECT t.w, t.weight, t.distinctive, t.holdable AND t.weight >= q.key_weight AS key,
                               CASE WHEN s.search_vector @@ t.as_typed_strong THEN 6
                                    WHEN s.search_vector @@ t.as_typed THEN 5
                                    WHEN s.search_vector @@ t.completed_strong THEN 4
                                    WHEN s.search_vector @@ t.completed THEN 3
                                    WHEN s.search_vector @@ t.related_strong THEN 2
                                    WHEN s.search_vector @@ t.related THEN 1
                                    ELSE 0 END AS held
                          -- OFFSET 0 keeps this a subquery: flattened, each aggregate above tested the
                          -- tsqueries again.
                          FROM terms t OFFSET 0) AS e
                  ) AS a
      ) AS ev
      CROSS JOIN LATERAL (
          SELECT 0.55 * coalesce(ev.term_score, 0)
               + 0.30 * tr.t / (tr.t + 0.1)
               -- The name after its namespace ("io.github.user/", name_tail: migration 0021): the
               -- namespace says who published it, not what it does, and the similarity costs half as
               -- much on the shorter text. Identical aggregates are computed once: the best
               -- similarity, if it reaches 0.5.
               + 0.15 * coalesce((SELECT CASE WHEN max(word_similarity(m.fw, s.name_tail)) >= 0.5
                                              THEN max(word_similarity(m.fw, s.name_tail)) END
                                    FROM misspelt m), 0) AS relevance
            -- ts_rank once (a subquery: written twice in the expression, it ran twice).
            FROM (SELECT coalesce(ts_rank('{0.1, 0.25, 0.5, 1.0}', s.search_vector, q.tsq_any), 0) AS t
                  OFFSET 0) AS tr
      ) AS rel
      LEFT JOIN LATERAL (
          SELECT n.similarity, n.ord
            FROM unnest(%(sem_ids)s::uuid[], %(sem_sims)s::float8[]) WITH ORDINALITY AS n (id, similarity, ord)
           WHERE n.id = s.id
           LIMIT 1
      ) AS sem ON true
), lex_ranked AS (
    -- Each candidate's place in the lexical order (strength, then score), for the fusion below.
    SELECT r.*,
           rank() OVER (ORDER BY r.lex_held DESC,
                                 CASE r.lex_strength WHEN 'exact' THEN 2 WHEN 'partial' THEN 1 ELSE 0 END DESC,
                                 r.score DESC) AS lex_rank
      FROM ranked r
), fused AS (
    -- Lexical search alone (sem_ids null): its strength and score. Fused (docs/discovery.md): the
    -- words' evidence and the meaning's each cast a vote by rank (reciprocal-rank fusion), and the
    -- strength weighs both. Words as typed keep their strength. A strength that rests on completed
    -- prefixes or related words (synonyms, spelling corrections) needs the meaning's support (a
    -- similarity of sem_support or more), else it is a guess, weak; and a server found by such words
    -- alone, unsupported, is no result at all ("convert currencies" is not "current"). Meaning alone
    -- makes a server partial when close (sem_strong), a weak guess when nearer than the floor.
    SELECT r.*,
           CASE WHEN %(sem_ids)s::uuid[] IS NULL THEN r.lex_strength
                -- Support is a similarity of sem_support or more among the nearest: a server outside them
                -- (its vector known, farther than all of them) is not supported, however near the bound.
                WHEN r.lex_strength <> 'weak' AND NOT r.typed_confident
                     AND (r.sem_upper < %(sem_support)s OR (r.similarity IS NULL AND r.sem_upper IS NOT NULL))
                    THEN 'weak'
                -- A partial match by the words other than their best one must be a candidate by meaning
                -- too (among the nearest, sem_floor or closer), else it is a guess: "translate text" is
                -- no match for a web scraper because its description holds the word text.
                WHEN r.lex_strength = 'partial' AND r.lex_rank > 1
                     AND (r.sem_upper < %(sem_floor)s OR (r.similarity IS NULL AND r.sem_upper IS NOT NULL))
                    THEN 'weak'
                WHEN r.lex_strength <> 'weak' THEN r.lex_strength
                WHEN r.similarity >= %(sem_strong)s THEN 'partial'
                WHEN r.sem_rank <= %(sem_top_n)s AND r.similarity >= %(sem_top)s THEN 'partial'
                ELSE 'weak' END AS strength,
           CASE WHEN %(sem_ids)s::uuid[] IS NULL THEN r.score
                ELSE 0.999 * (CASE WHEN r.lex_held THEN %(w_lex)s / (%(rrf_k)s + r.lex_rank) ELSE 0 END
                              + CASE WHEN r.similarity >= %(sem_floor)s THEN %(w_sem)s / (%(rrf_k)s + r.sem_rank) ELSE 0 END)
                           / ((%(w_lex)s + %(w_sem)s) / (%(rrf_k)s + 1.0)) END AS fused_score
      FROM lex_ranked r
     WHERE %(sem_ids)s::uuid[] IS NULL
        OR NOT (coalesce(r.max_held BETWEEN 1 AND 4, false) AND NOT coalesce(r.sem_upper >= %(sem_support)s, true))
), shown AS (
    -- Weak candidates follow the confident ones, marked weak; when none matched well the answer says
    -- no_confident_match.
    SELECT r.*, bool_or(r.strength <> 'weak') OVER () AS confident FROM fused r
), keyed AS (
    -- The sort key of the requested order, and how many the question returns across its pages.
    SELECT r.*,
           count(*) OVER () AS total,
           CASE %(sort)s
               -- Exact matches first, then partial, then weak ones, each by score.
               WHEN 'relevance' THEN -r.fused_score - CASE r.strength WHEN 'exact' THEN 2 WHEN 'partial' THEN 1 ELSE 0 END
               WHEN 'trust' THEN -r.trust_score::float8
               WHEN 'latency' THEN coalesce(r.avg_response_time_ms, 'Infinity'::real)::float8
               WHEN 'newest' THEN -extract(epoch FROM r.created_at)::float8
               ELSE 0
           END AS k
      FROM shown r
), page AS (
    -- One keyset page: the rows after the cursor's key, one more than asked (is there a next page?).
    SELECT * FROM keyed
     WHERE %(after_name)s::text IS NULL OR (k, name) > (%(after_real)s::float8, %(after_name)s::text)
     ORDER BY k, name
     LIMIT %(limit)s
)
-- Why each result matched, for the returned rows only: the stored lexemes that match a term or a related
-- word, each with the weights of the fields that hold it (A name or title, B capabilities, category or
-- tool names, C description, D tool descriptions), which of the B ones are capabilities or the category,
-- and the name's words near a misspelt query word. DiscoveryService turns them into match.matched.
-- Parsing each field's text again cost a third of a search; grouping them here, 0.3 ms more at 100k.
SELECT
       -- include _server_columns
       p.fused_score AS relevance, p.k::text AS sort_key,
       p.strength, p.term_evidence, p.confident, p.total, p.similarity,
       ml.lexemes AS matched_lexemes, q.lexeme_words,
       CASE WHEN ml.strong IS NOT NULL THEN
           ARRAY(SELECT unnest(ml.strong)
                 INTERSECT
                 SELECT unnest(s.capability_lexemes))
       END AS matched_capabilities,
       -- The D lexemes that are the package identifiers' or the repository's words, not tool descriptions.
       -- Without tools every D lexeme is one, without packages or repository none. Their words are kept
       -- stemmed in package_lexemes (migration 0021): reading the packages again cost 0.1 ms a row.
       CASE WHEN ml.low IS NULL THEN NULL
            WHEN s.tools = '[]'::jsonb THEN ml.low
            ELSE ARRAY(SELECT unnest(ml.low) INTERSECT SELECT unnest(s.package_lexemes))
       END AS matched_packages,
       -- Splitting the name cost a third of this step when no word was misspelt (most questions).
       -- [name word, the misspelt word of the question it is near] pairs.
       CASE WHEN EXISTS (SELECT 1 FROM misspelt) THEN
           ARRAY(SELECT DISTINCT ARRAY[nt, m.fw]
                   FROM regexp_split_to_table(lower(s.name_tail), '[./_-]+') AS nt,
                        misspelt AS m
                  WHERE similarity(m.fw, nt) >= 0.4)
       END AS matched_name_words
  FROM page p
  JOIN mcp_servers s ON s.id = p.id
 CROSS JOIN q
 CROSS JOIN LATERAL (
     SELECT array_agg(array_to_string(v.weights, '') || ':' || v.lexeme) AS lexemes,
            array_agg(v.lexeme) FILTER (WHERE 'B' = ANY (v.weights)) AS strong,
            array_agg(v.lexeme) FILTER (WHERE 'D' = ANY (v.weights)) AS low
       FROM unnest(s.search_vector) AS v (lexeme, positions, weights)
      WHERE v.lexeme = ANY (q.match_words)
 ) AS ml
 ORDER BY p.k, p.name;

-- kept_plans --
-- From now on this connection runs its statements on their cached generic plans (Repository.read)
SET plan_cache_mode = force_generic_plan;

-- custom_plans --
-- From now on this connection plans each statement for its parameters again, as it started (make_pool)
SET plan_cache_mode = force_custom_plan;

-- capability_counts --
-- Capability and category counts over listed servers, most common first
SELECT 'capability' AS kind, c AS value, count(*) AS servers
  FROM mcp_servers s, unnest(s.capabilities) AS c
 WHERE mcp_server_listed(s)
 GROUP BY c
UNION ALL
SELECT 'category', s.category, count(*)
  FROM mcp_servers s
 WHERE mcp_server_listed(s) AND s.category IS NOT NULL
 GROUP BY s.category
 ORDER BY servers DESC, value
 LIMIT %(limit)s;

-- discovery_stats --
-- Registry-wide figures for get_discovery_stats
SELECT count(*) FILTER (WHERE mcp_server_listed(s)) AS listed,
       count(*) FILTER (WHERE mcp_server_listed(s) AND s.verified) AS verified,
       count(*) FILTER (WHERE mcp_server_listed(s) AND s.source = 'import') AS imported,
       count(*) FILTER (WHERE s.status = 'pending') AS pending,
       count(*) FILTER (WHERE s.status = 'active' AND s.health_status = 'healthy') AS healthy,
       count(*) FILTER (WHERE s.status = 'active' AND s.remotes_blocked) AS remotes_blocked,
       (SELECT jsonb_object_agg(t, n) FROM (
            SELECT t, count(*) AS n FROM mcp_servers s2, unnest(s2.transports) AS t
             WHERE mcp_server_listed(s2) GROUP BY t) AS x) AS transports,
       count(*) FILTER (WHERE mcp_server_listed(s) AND coalesce(cardinality(s.transports), 0) = 0) AS no_transport,
       avg(s.trust_score) FILTER (WHERE s.status = 'active') AS avg_trust_score,
       (SELECT count(*) FROM discovery_events WHERE created_at > now() - interval '24 hours') AS searches_24h,
       (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
          FROM discovery_events WHERE created_at > now() - interval '24 hours') AS search_p95_ms_24h
  FROM mcp_servers s;

-- discovery_generation --
-- Moves whenever a change to mcp_servers can change a discovery answer (see migration 0005), and where the WAL ends; 0 until the
-- first change (last_value is the sequence's start, 1, both before its first nextval and after it)
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS generation, pg_current_wal_insert_lsn()::text AS lsn
  FROM discovery_generation;

-- listen_discovery_generation --
-- Ask for a notification whenever the discovery generation moves (migration 0020)
LISTEN mcplookup_discovery_generation;

-- cursor_key --
-- The key that signs discovery cursors: the candidate is stored if no replica stored one first
WITH made AS (
    INSERT INTO instance_secrets (name, value) VALUES ('discovery_cursor', %(candidate)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING value
)
SELECT value FROM made
UNION ALL
SELECT value FROM instance_secrets WHERE name = 'discovery_cursor'
LIMIT 1;

-- nearest_within_filters --
-- A filtered fused search's nearest servers by meaning among those its filters keep, from pgvector's HNSW index (run after iterative_vector_scan, in its transaction)
-- Filtered in the scan: the 40 nearest overall may hold none that the filters keep. The iterative scan
-- goes on past ef_search until the limit is met; it may yield rows slightly out of order, so the
-- materialized step is sorted again.
WITH nearest AS MATERIALIZED (
    SELECT e.server_id AS id, e.vec <=> %(vector)s::real[]::vector AS distance
      FROM server_embeddings e
      JOIN mcp_servers s ON s.id = e.server_id
     WHERE e.model = %(model)s AND e.vec IS NOT NULL
       -- include _listed_filters
     ORDER BY e.vec <=> %(vector)s::real[]::vector
     LIMIT %(limit)s
)
SELECT id, 1 - distance AS similarity FROM nearest ORDER BY distance, id;

-- listed_within_filters --
-- The servers a filtered search keeps, for scoring their vectors in process where the database has no pgvector
SELECT s.id
  FROM mcp_servers s
 WHERE true
       -- include _listed_filters
 LIMIT %(limit)s;
