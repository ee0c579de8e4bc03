-- A server's shape: the columns every answer about a server is read from, for the queries of every file.

-- _server_columns --
-- The stored server fields ServerOut.from_row reads (core/models.py), with the id and publication time; ends in a comma
       s.id, s.name, s.title, s.description, s.version, s.domain, s.endpoint, s.transport,
           s.capabilities, s.category, s.auth_type, s.website_url, s.repository, s.packages, s.remotes,
           s.source, s.status, s.verified, s.health_status, s.trust_score, s.uptime_percentage,
           s.avg_response_time_ms, s.last_health_check_at, s.created_at, s.updated_at,
           s.published_at, s.remotes_blocked,
