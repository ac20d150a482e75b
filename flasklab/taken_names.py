"""Names the app cannot take: the server already has them, or SQL reserves them (appName
names the app's user, group, database and units)."""

from __future__ import annotations

# Names the app's user, group, database and units cannot take on the server: Debian's
# system accounts and groups, the login users of cloud images, the services' accounts.
_TAKEN_NAMES_WORDS = (
    "root daemon bin sys sync games man lp mail news uucp proxy www_data backup list irc gnats "
    "nobody adm tty disk kmem dialout fax voice cdrom floppy tape sudo audio dip operator src "
    "shadow utmp video sasl plugdev staff users nogroup netdev messagebus sshd systemd_network "
    "systemd_resolve systemd_timesync systemd_journal admin debian ubuntu ec2_user supervisor "
    "nginx apache apache2 mysql mariadb postgres postgresql uwsgi gunicorn certbot flasklab "
)
TAKEN_NAMES = frozenset(_TAKEN_NAMES_WORDS.split())
# Words PostgreSQL and MariaDB reserve: a database or user named so breaks their setup SQL.
_SQL_RESERVED_WORDS = (
    "ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC BOTH CASE CAST CHECK COLLATE COLUMN "
    "CONSTRAINT CREATE CURRENT_CATALOG CURRENT_DATE CURRENT_ROLE CURRENT_TIME CURRENT_TIMESTAMP "
    "CURRENT_USER DEFAULT DEFERRABLE DESC DISTINCT DO ELSE END EXCEPT FALSE FETCH FOR FOREIGN "
    "FROM GRANT GROUP HAVING IN INITIALLY INTERSECT INTO LATERAL LEADING LIMIT LOCALTIME "
    "LOCALTIMESTAMP NOT NULL OFFSET ON ONLY OR ORDER PLACING PRIMARY REFERENCES RETURNING SELECT "
    "SESSION_USER SOME SYMMETRIC TABLE THEN TO TRAILING TRUE UNION UNIQUE USER USING VARIADIC "
    "WHEN WHERE WINDOW WITH DATABASE DELETE DROP INDEX INSERT KEY KEYS LIKE MATCH READ SCHEMA "
    "SET SHOW UPDATE USAGE "
)
SQL_RESERVED = frozenset(_SQL_RESERVED_WORDS.split())
