-- People and what they may reach: users, their memberships of organizations (with a role), an
-- optional role per project that overrides the organization's, and the server-side sessions of the
-- web UI. Roles are Langfuse's: OWNER > ADMIN > MEMBER > VIEWER, and NONE (a member of the
-- organization who reaches only the projects that give them a role of their own).
-- Sign-in throttling counters are not here: they live in Redis with a TTL.

CREATE TABLE users (
    id             text PRIMARY KEY,
    email          text NOT NULL,
    name           text,
    -- The argon2id hash in PHC string form (algorithm, parameters and salt included), or NULL for a
    -- user who cannot sign in with a password.
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One account per address whatever its case: "Ada@Example.com" and "ada@example.com" are one person.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE organization_memberships (
    id          text PRIMARY KEY,
    org_id      text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER', 'NONE')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, user_id)
);

CREATE INDEX organization_memberships_user_id_idx ON organization_memberships (user_id);

-- A role on one project that replaces the organization role there. It belongs to an organization
-- membership: removing someone from the organization removes their project roles too.
CREATE TABLE project_memberships (
    org_membership_id  text NOT NULL REFERENCES organization_memberships (id) ON DELETE CASCADE,
    project_id         text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id            text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role               text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER', 'NONE')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);

CREATE INDEX project_memberships_user_id_idx ON project_memberships (user_id);
CREATE INDEX project_memberships_org_membership_id_idx ON project_memberships (org_membership_id);

-- A signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so a copy of
-- this table signs nobody in. Sign-out deletes the row; a password change deletes the user's others.
CREATE TABLE user_sessions (
    token_hash    text PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);
CREATE INDEX user_sessions_expires_at_idx ON user_sessions (expires_at);
