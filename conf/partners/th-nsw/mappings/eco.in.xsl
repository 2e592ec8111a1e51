<?xml version="1.0" encoding="UTF-8"?>
<!-- th-nsw e-CO, inbound: Thai e-CO (canonical structure, Thai codes) -> canonical e-CO.
     The inverse of eco.out.xsl: the same templates, translations run in the "in" direction
     (cl:translate knows the direction of the stylesheet it is called from). -->
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
