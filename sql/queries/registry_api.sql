-- registry_list --
-- One page of /v0.1/servers in (name, version) order, after the cursor's entry
SELECT e.*
  FROM registry_entries e
 WHERE (%(after_name)s::text IS NULL OR (e.name, e.version) > (%(after_name)s::text, %(after_version)s::text))
   AND (%(search)s::text IS NULL OR e.name ILIKE %(search)s)
   AND (%(updated_since)s::timestamptz IS NULL OR e.updated_at > %(updated_since)s)
   AND (%(include_deleted)s OR e.status <> 'deleted')
   AND (%(version)s::text IS NULL OR (%(version)s = 'latest' AND e.is_latest) OR e.version = %(version)s)
 ORDER BY e.name, e.version
 LIMIT %(limit)s;

-- registry_versions --
-- Every version of one server, newest publication first
SELECT e.*
  FROM registry_entries e
 WHERE e.name = %(name)s AND (%(include_deleted)s OR e.status <> 'deleted')
 ORDER BY e.published_at DESC, e.version DESC;

-- registry_version --
-- One version of one server, or its latest
SELECT e.*
  FROM registry_entries e
 WHERE e.name = %(name)s
   AND ((%(version)s = 'latest' AND e.is_latest) OR e.version = %(version)s)
   AND (%(include_deleted)s OR e.status <> 'deleted')
 ORDER BY e.is_latest DESC
 LIMIT 1;
