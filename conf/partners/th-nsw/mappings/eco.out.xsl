<?xml version="1.0" encoding="UTF-8"?>
<!-- th-nsw e-CO, outbound: Thailand's NSW takes the canonical e-CO structure but its own codes:
     document status words, units as in its tariff, HS edition as "HSyyyy"; ports and countries
     are checked against UN/LOCODE and ISO 3166 before they leave. Copy-and-patch style:
     everything is copied, only coded fields are rewritten. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:eco="urn:swgw:canonical:eco:1" xmlns:cl="urn:swgw:codelists" exclude-result-prefixes="cl">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>

  <xsl:template match="@*|node()">
    <xsl:copy><xsl:apply-templates select="@*|node()"/></xsl:copy>
  </xsl:template>

  <xsl:template match="comment()"/>

  <xsl:template match="eco:ExchangedDocument/eco:StatusCode">
    <xsl:copy><xsl:value-of select="cl:translate('document-status', .)"/></xsl:copy>
  </xsl:template>

  <xsl:template match="eco:CountryID | eco:ExportCountryID | eco:ImportCountryID | eco:OriginTradeCountry/eco:ID">
    <xsl:copy><xsl:value-of select="cl:check('country', .)"/></xsl:copy>
  </xsl:template>

  <xsl:template match="eco:LoadingLogisticsLocation/eco:ID | eco:UnloadingLogisticsLocation/eco:ID | eco:IssueLogisticsLocation/eco:ID">
    <xsl:copy><xsl:value-of select="cl:check('unlocode', .)"/></xsl:copy>
  </xsl:template>

  <xsl:template match="@unitCode">
    <xsl:attribute name="unitCode"><xsl:value-of select="cl:translate('unit', .)"/></xsl:attribute>
  </xsl:template>

  <xsl:template match="eco:ClassCode/@listVersionID">
    <xsl:attribute name="listVersionID"><xsl:value-of select="cl:translate('hs-version', .)"/></xsl:attribute>
  </xsl:template>
</xsl:stylesheet>
