"""MariaDB (MySQL's dialect): DDL with backticks, `#` comments, `COMMENT '...'` with quotes, ENGINE= and
AUTO_INCREMENT= options, inline KEYs, an enum, a view and a trigger, loaded into a throwaway server and printed
back by `mysqldump --no-data` (executable `/*!...*/` comments, `DELIMITER ;;`, a view's stand-in table). The ground
truth is the server's information_schema."""

from __future__ import annotations

from benchmarks.engine_servers import ThrowawayMariaDB
from benchmarks.schema_corpus.files import Catalog, CorpusFile

SOURCE = """\
# the shop, as a person writes it for MySQL
CREATE TABLE customers (
  id int(11) NOT NULL AUTO_INCREMENT COMMENT 'the customer''s id',
  `first name` varchar(50) DEFAULT NULL, # a hash comment: it's fine
  `order` int DEFAULT NULL, `group` varchar(10), `index` int,
  status enum('new','old') DEFAULT 'new',
  note text COMMENT 'semi; colon (and parens) -- not a comment',
  PRIMARY KEY (id), KEY idx_name (`first name`), UNIQUE KEY (`order`)
) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COMMENT='all the customer''s rows';
CREATE TABLE IF NOT EXISTS orders (
  id int PRIMARY KEY,
  customer_id int,
  amount decimal(10,2),
  created datetime DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  CONSTRAINT fk_c FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE
) ENGINE=InnoDB;
/* an old table, replaced */
DROP TABLE IF EXISTS legacy;
CREATE TABLE legacy (a int);
ALTER TABLE legacy ADD COLUMN b varchar(5) AFTER a;
CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 100;
CREATE TRIGGER trg BEFORE INSERT ON orders FOR EACH ROW SET NEW.amount = IFNULL(NEW.amount, 0);
"""

QUERIES = (
    "SELECT `first name`, `order`, `group`, `index` FROM customers WHERE status = 'new'",
    "SELECT c.id, o.amount FROM orders AS o JOIN customers AS c ON c.id = o.customer_id ORDER BY o.created DESC "
    "LIMIT 3",
    "SELECT amount FROM big_orders",
    "SELECT a, b FROM legacy",
)


def catalog(server: ThrowawayMariaDB, database: str) -> Catalog:
    rows = server.sql("SELECT TABLE_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR '|') "
                      f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{database}' GROUP BY TABLE_NAME;")
    found: Catalog = {}
    for line in rows.splitlines():
        table, columns = line.split("\t")
        found[table] = tuple(columns.split("|"))  # no name in this schema holds a |
    return found


def files(server: ThrowawayMariaDB) -> list[CorpusFile]:
    server.sql("CREATE DATABASE shop;")
    server.sql(SOURCE, "shop")
    truth = catalog(server, "shop")
    for query in QUERIES:  # MariaDB prepares each against the schema: known correct
        server.sql(f"EXPLAIN {query};", "shop")
    return [
        CorpusFile("mariadb/source.sql", f"hand-written DDL, loaded into {server.version()}", "mysql", SOURCE,
                   truth, QUERIES),
        CorpusFile("mariadb/mysqldump.sql", f"mysqldump --no-data ({server.version()})", "mysql",
                   server.dump("shop"), truth, QUERIES),
    ]
