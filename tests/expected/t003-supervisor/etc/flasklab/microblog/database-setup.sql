-- Written by flasklab for stack t003-supervisor (recipe nginx-gunicorn-supervisor); change the stack's config rather than this file.
-- The database of microblog (utf8mb4: all of Unicode) and a user with rights on it
-- alone, reachable from this server only. Run by flasklab-deploy; safe to run again.
CREATE DATABASE IF NOT EXISTS `microblog` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'microblog'@'localhost';
ALTER USER 'microblog'@'localhost' IDENTIFIED BY 'TestDatabasePassword0123456789ab';
GRANT ALL PRIVILEGES ON `microblog`.* TO 'microblog'@'localhost';
