USE [Shop]
GO
/****** Object:  Schema [sales]    Script Date: 1/2/2024 10:00:00 AM ******/
CREATE SCHEMA [sales]
GO
/****** Object:  Table [dbo].[Customers]    Script Date: 1/2/2024 10:00:00 AM ******/
SET ANSI_NULLS ON
GO
SET QUOTED_IDENTIFIER ON
GO
CREATE TABLE [dbo].[Customers](
	[CustomerID] [int] IDENTITY(1,1) NOT NULL,
	[Customer Name] [nvarchar](100) NOT NULL,
	[Order] [int] NULL,
	[Group] [nvarchar](10) NULL,
	[Notes] [nvarchar](max) NULL,
	[Total]  AS ([Order]*(2)),
 CONSTRAINT [PK_Customers] PRIMARY KEY CLUSTERED 
(
	[CustomerID] ASC
)WITH (PAD_INDEX = OFF, STATISTICS_NORECOMPUTE = OFF, IGNORE_DUP_KEY = OFF, ALLOW_ROW_LOCKS = ON, ALLOW_PAGE_LOCKS = ON, OPTIMIZE_FOR_SEQUENTIAL_KEY = OFF) ON [PRIMARY]
) ON [PRIMARY] TEXTIMAGE_ON [PRIMARY]
GO
/****** Object:  Table [sales].[Orders]    Script Date: 1/2/2024 10:00:00 AM ******/
SET ANSI_NULLS ON
GO
SET QUOTED_IDENTIFIER ON
GO
CREATE TABLE [sales].[Orders](
	[OrderID] [int] NOT NULL,
	[CustomerID] [int] NULL,
	[Amount] [decimal](10, 2) NULL,
	[Placed] [datetime2](7) NULL,
 CONSTRAINT [PK_Orders] PRIMARY KEY CLUSTERED 
(
	[OrderID] ASC
)WITH (PAD_INDEX = OFF, STATISTICS_NORECOMPUTE = OFF, IGNORE_DUP_KEY = OFF, ALLOW_ROW_LOCKS = ON, ALLOW_PAGE_LOCKS = ON, OPTIMIZE_FOR_SEQUENTIAL_KEY = OFF) ON [PRIMARY]
) ON [PRIMARY]
GO
/****** Object:  View [sales].[BigOrders]    Script Date: 1/2/2024 10:00:00 AM ******/
SET ANSI_NULLS ON
GO
SET QUOTED_IDENTIFIER ON
GO
CREATE VIEW [sales].[BigOrders] AS
SELECT [OrderID], [Amount] FROM [sales].[Orders] WHERE [Amount] > 100
GO
ALTER TABLE [dbo].[Customers] ADD  CONSTRAINT [DF_Customers_Order]  DEFAULT ((0)) FOR [Order]
GO
ALTER TABLE [sales].[Orders]  WITH CHECK ADD  CONSTRAINT [FK_Orders_Customers] FOREIGN KEY([CustomerID])
REFERENCES [dbo].[Customers] ([CustomerID])
GO
ALTER TABLE [sales].[Orders] CHECK CONSTRAINT [FK_Orders_Customers]
GO
/****** Object:  StoredProcedure [dbo].[usp_Top]    Script Date: 1/2/2024 10:00:00 AM ******/
CREATE PROCEDURE [dbo].[usp_Top] AS
BEGIN
	SET NOCOUNT ON;
	SELECT TOP 10 [Customer Name] FROM [dbo].[Customers];
END
GO
EXEC sys.sp_addextendedproperty @name=N'MS_Description', @value=N'The customer''s name; as written' , @level0type=N'SCHEMA',@level0name=N'dbo', @level1type=N'TABLE',@level1name=N'Customers', @level2type=N'COLUMN',@level2name=N'Customer Name'
GO
