-- Inventory schema, hand-written for SQL Server: the warehouse's tables
IF OBJECT_ID('dbo.Stock', 'U') IS NOT NULL DROP TABLE dbo.Stock;
GO
CREATE TABLE dbo.Products (
    ProductID int NOT NULL PRIMARY KEY,   -- the product's id
    [Product Name] nvarchar(200) NOT NULL,
    [Key] nvarchar(20) NULL,              /* a reserved word; it's allowed in brackets */
    Price money NULL,
    [Weight (kg)] decimal(8, 3) NULL
);
GO
CREATE TABLE dbo.Stock (
    ProductID int REFERENCES dbo.Products (ProductID),
    [Index] int,
    Qty int CONSTRAINT DF_Qty DEFAULT 0
);
GO 2
CREATE INDEX IX_Stock_Product ON dbo.Stock (ProductID);
GO
